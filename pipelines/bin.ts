#!/usr/bin/env node
// The `rxrl` executable. Installed packages run its compiled form (dist/pipelines/bin.js) with plain
// Node; in the repository, pipelines/bin.mjs registers tsx and runs this file from the sources.
import { main } from './cli.ts';

// `rxrl list | head`: a closed pipe ends the output quietly, as for any Unix tool.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
process.exitCode = await main(process.argv.slice(2));
