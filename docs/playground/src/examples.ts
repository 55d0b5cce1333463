/**
 * The examples the page offers: every shipped example pipeline (pipelines/examples/*.yaml, as the
 * CLI runs them) and the playground's own small ones (docs/playground/examples/*.yaml: the other
 * envs). Pipelines that read files are listed but cannot run here.
 */
const shipped = import.meta.glob<string>('../../../pipelines/examples/*.yaml', { query: '?raw', import: 'default', eager: true });
const playground = import.meta.glob<string>('../examples/*.yaml', { query: '?raw', import: 'default', eager: true });

export interface Example {
  /** The file name without `.yaml` (the `?example=` of the page's URL). */
  name: string;
  /** The file name, e.g. `grpo-cartpole.yaml` (errors start with it). */
  file: string;
  text: string;
  /** Its `pipeline:` value. */
  pipeline: string;
  /** Where it lives in the repository. */
  path: string;
}

function examplesOf(files: Record<string, string>, dir: string): Example[] {
  return Object.entries(files).map(([path, text]) => {
    const file = path.slice(path.lastIndexOf('/') + 1);
    return { name: file.replace(/\.ya?ml$/, ''), file, text, pipeline: /^pipeline:\s*([\w-]+)/m.exec(text)?.[1] ?? '?', path: `${dir}/${file}` };
  });
}

/** Shipped examples first, then the playground's, each sorted by name. */
export const EXAMPLES: readonly Example[] = [
  ...examplesOf(shipped, 'pipelines/examples').sort((a, b) => a.name.localeCompare(b.name)),
  ...examplesOf(playground, 'docs/playground/examples').sort((a, b) => a.name.localeCompare(b.name)),
];
