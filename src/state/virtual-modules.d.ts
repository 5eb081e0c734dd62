/** Baked in at build time by vite.config.ts (a static server cannot list a folder). */
declare module 'virtual:demo-model-manifest' {
  const files: { path: string; size: number }[];
  export default files;
}
