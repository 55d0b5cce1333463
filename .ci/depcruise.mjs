#!/usr/bin/env node
/**
 * `depcruise` through dependency-cruiser's API: its CLI refuses Node 20 (engines ^22), while the
 * API it wraps runs on Node 20 unchanged. Usage, as the CLI: `node .ci/depcruise.mjs DIR... --config FILE`.
 * Prints the violations in the CLI's `err` format and exits non-zero when there is one.
 */
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { resolve } from 'node:path';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

const args = process.argv.slice(2);
const at = args.indexOf('--config');
const configFile = at >= 0 ? args[at + 1] : '.dependency-cruiser.cjs';
const dirs = args.filter((a, i) => a !== '--config' && i !== at + 1);
if (!configFile || dirs.length === 0) {
  console.error('usage: node .ci/depcruise.mjs DIR... [--config FILE]');
  process.exit(2);
}
const options = await extractDepcruiseOptions(resolve(configFile));
const tsConfigFile = options.tsConfig?.fileName;
const result = await cruise(
  dirs,
  { ...options, validate: true, outputType: 'err' },
  undefined,
  tsConfigFile ? { tsConfig: extractTSConfig(tsConfigFile) } : undefined,
);
process.stdout.write(String(result.output));
process.exitCode = result.exitCode > 0 ? 1 : 0;
