#!/usr/bin/env node
// The corral executable: runs the compiled TypeScript in dist/.
const args = process.argv.slice(2);
let entry;
try {
  // As PID 1, corral runs behind its own init; loaded before the rest, so a Node that stays PID 1 stays small.
  const code = await (await import('../dist/platform/pid-one.js')).runBehindInitIfPidOne(args);
  if (code !== undefined) process.exit(code);
  entry = await import('../dist/main.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && /dist\/(main|platform\/pid-one)\.js/.test(String(error.message))) {
    process.stderr.write('corral: error: corral is not built; run npm run build (or npm install) first\n');
    process.exit(1);
  }
  throw error;
}
process.exit(await entry.main(args));
