#!/usr/bin/env node
// The corral executable: runs the compiled TypeScript in dist/.
let entry;
try {
  entry = await import('../dist/main.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/main.js')) {
    process.stderr.write('corral: error: corral is not built; run npm run build (or npm install) first\n');
    process.exit(1);
  }
  throw error;
}
process.exit(await entry.main(process.argv.slice(2)));
