import { expect, test } from '@playwright/test';

test('the workbench shell shows every region of the workflow', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Abliteration Workbench' })).toBeVisible();
  for (const region of ['Model', 'Prompt sets', 'Capture and per-layer analysis', 'Export']) {
    await expect(page.getByRole('heading', { name: new RegExp(region) })).toBeVisible();
  }
  expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
});
