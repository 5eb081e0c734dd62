/**
 * A WebGPU device for kernel tests in Node, from the `webgpu` package (Dawn). Tried in order:
 * 1. Vulkan on SwiftShader, when the process was started with LD_LIBRARY_PATH=/usr/lib/chromium and
 *    VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (Dawn dlopens libvulkan.so.1, which only
 *    Chromium's folder provides here, and the loader reads LD_LIBRARY_PATH at process start only);
 * 2. Mesa llvmpipe through OpenGL ES (EGL_PLATFORM=surfaceless, compatibility feature level), which needs no
 *    start-up environment and is what a plain `npx vitest` gets.
 * Returns the reason when neither gives an adapter, so the test can say exactly why it was skipped.
 */
import { acquireGpuDevice, type GpuContext } from '../../src/gpu/device';

export type NodeGpu = { context: GpuContext; backend: string } | { context: null; reason: string };

export async function acquireNodeGpu(): Promise<NodeGpu> {
  const reasons: string[] = [];
  let webgpu: typeof import('webgpu');
  try {
    webgpu = await import('webgpu');
  } catch (error) {
    return { context: null, reason: `the webgpu package does not load: ${(error as Error).message}` };
  }
  Object.assign(globalThis, webgpu.globals);
  if (process.env.VK_ICD_FILENAMES) {
    try {
      const context = await acquireGpuDevice({ gpu: webgpu.create([]) });
      return { context, backend: `vulkan: ${context.description}` };
    } catch (error) {
      reasons.push(`vulkan: ${(error as Error).message}`);
    }
  }
  process.env.EGL_PLATFORM ??= 'surfaceless';
  try {
    const context = await acquireGpuDevice({ gpu: webgpu.create(['backend=opengles']), featureLevel: 'compatibility' });
    return { context, backend: `opengles: ${context.description}` };
  } catch (error) {
    reasons.push(`opengles: ${(error as Error).message}`);
  }
  return { context: null, reason: reasons.join('; ') };
}
