import fs from 'node:fs';

/** corral's version, from its package.json (one level above both src/ and dist/). */
export const VERSION: string = (
  JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
