// Types of portal-api.mjs, for the test that checks the generated file is fresh.
export const docPath: string;
export const outPath: string;
export function generate(doc: unknown): string;
