/** See cli-bundle.mjs: the URL of the bundled CLI main module, built if the sources changed; null when it cannot be. */
export function bundledCliEntry(): Promise<string | null>;
