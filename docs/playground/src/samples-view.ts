/**
 * The samples panel (page side): the policy's completions to held-out prompts with the verifier's
 * scores — the user's utility, prompt-level compliance and, per system rule in order, kept (✓) or
 * broken (✗) —
 * as the worker's samples viewer (src/samples.ts) computes them between iterations.
 */
import type { Samples } from './protocol.ts';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * Shows `s` in `root` (replacing what was there).
 * @param root The panel.
 * @param s The samples of one policy version.
 */
export function renderSamples(root: HTMLElement, s: Samples): void {
  const rows = s.samples.map((x) => {
    const row = el('div', `sample ${x.kind}`);
    const head = el('div', 'sample-head');
    head.append(el('span', 'sample-kind', x.kind), el('span', 'sample-rules', `system: ${x.rules.join(' · ')}`));
    row.append(head, el('div', 'sample-user', `user: ${x.user}`));
    for (const c of x.completions) {
      const line = el('div', 'sample-completion');
      line.append(el('span', 'sample-answer', `→ ${c.text || '(empty)'}`));
      const marks = el('span', 'sample-score');
      marks.append(`utility ${c.utility.toFixed(2)} · compliance ${c.compliance} · rules `);
      c.kept.forEach((k, j) => {
        const mark = el('span', `rule ${k ? 'kept' : 'broken'}`, k ? '✓' : '✗');
        mark.title = `${x.rules[j]}: ${k ? 'kept' : 'broken'}`;
        marks.append(mark);
      });
      line.append(marks);
      row.append(line);
    }
    return row;
  });
  const title = el('div', 'samples-title', `completions of policy version ${s.version} (sampled at temperature ${s.temperature}) to held-out prompts`);
  root.replaceChildren(title, ...rows);
}
