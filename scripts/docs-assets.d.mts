/** Copies the API reference's browser files into the static-assets directory when missing or stale. */
export function ensureDocsAssets(): void;
