/**
 * Pipeline files on disk (Node): `readPipelineFile(path)` checks what the path is and its size
 * before reading, then parses it with `parsePipelineText` (pipelines/config.ts), so a file read
 * here and text pasted into the browser playground give the same errors.
 *
 * ```ts
 * const raw = readPipelineFile('pipelines/examples/grpo-cartpole.yaml');
 * const { def, config } = decodePipelineConfig(raw, ['iterations=4'], 'grpo-cartpole.yaml');
 * ```
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError, MAX_CONFIG_BYTES, parsePipelineText } from './config.ts';

/**
 * Reads a YAML or JSON pipeline file into a raw object; syntax errors carry line and column.
 * @param path The file (`.yaml`, `.yml` or `.json`).
 * @returns The raw top-level mapping; a `ConfigError` naming the file otherwise.
 */
export function readPipelineFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    // Size and kind first: a FIFO or /dev/zero would be read forever, a 50 MB list parsed into OOM.
    const st = statSync(path);
    if (!st.isFile()) throw new ConfigError(`${path}: not a regular file`);
    if (st.size > MAX_CONFIG_BYTES) throw new ConfigError(`${path}: ${st.size} bytes; pipeline files are limited to ${MAX_CONFIG_BYTES} bytes (1 MB)`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? (e as Error).message})`);
  }
  return parsePipelineText(text, path);
}
