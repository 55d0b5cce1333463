#!/usr/bin/env node
// The `rxrl` executable: registers tsx (a runtime dependency) so the TypeScript sources run as they are.
import { register } from 'tsx/esm/api';
register();
// `rxrl list | head`: a closed pipe ends the output quietly, as for any Unix tool.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
