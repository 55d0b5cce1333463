/**
 * The samples viewer of the HIPO family (inside the worker): the policy's completions to a few
 * fixed held-out prompts of the synthetic suite — conflicting ones (the user asks for what the
 * system rules forbid) and aligned ones — sampled as the rollouts sample (the run's temperature),
 * from a random stream of its own that starts afresh each time, so two views differ only by the
 * weights. Each completion comes with the verifier's scores: the user's utility, prompt-level
 * compliance and, per system rule, whether the completion keeps it.
 */
import { type CausalLM, Rng, answerUntilStop, describeRule, generate } from 'rxrl';
import { makeLm, makeSuite, type ModelSection, type SuiteSection } from 'rxrl/pipelines';
import type { Sample } from './protocol.ts';
import { copyInto, storeOf, type Viewer } from './viewer.ts';

/** Held-out prompts of each kind shown, and completions sampled per prompt. */
const PROMPTS = 2;
const PER_PROMPT = 2;

/**
 * The samples viewer of a resolved HIPO-family config (the synthetic suite; a `text` suite runs
 * under Node only).
 * @param config The resolved config (`suite`, `model`, `algorithm.temperature`).
 * @returns The viewer.
 */
export function samplesViewer(config: Record<string, unknown>): Viewer {
  const suite = makeSuite(config['suite'] as SuiteSection);
  const lm: CausalLM = makeLm(config['model'] as ModelSection, suite, 0);
  const temperature = ((config['algorithm'] ?? {}) as { temperature?: number }).temperature ?? 1;
  const prompts = [
    ...suite.heldOut.conflicting.slice(0, PROMPTS).map((p) => ({ p, kind: 'conflicting' as const })),
    ...suite.heldOut.aligned.slice(0, PROMPTS).map((p) => ({ p, kind: 'aligned' as const })),
  ];
  // Each prompt PER_PROMPT times in one batch (rows of a prompt adjacent).
  const rows = prompts.flatMap(({ p }) => Array.from({ length: PER_PROMPT }, () => p.tokens));
  return {
    view(params, version) {
      copyInto(lm.params, storeOf(params));
      const out = generate(lm, rows, new Rng(0, 'viewer/samples'), {
        maxNewTokens: suite.config.maxAnswerTokens,
        temperature,
        stopTokens: [suite.stopToken],
        padToken: 0,
      });
      const samples: Sample[] = prompts.map(({ p, kind }, i) => ({
        kind,
        rules: p.system.map(describeRule),
        user: p.userText.join(' '),
        completions: out.tokens.slice(i * PER_PROMPT, (i + 1) * PER_PROMPT).map((tokens) => {
          const score = suite.score(p, tokens);
          return {
            text: answerUntilStop(suite.tokenizer.decodeWords(tokens)).join(' '),
            kept: score.perRule.map((k) => k === 1),
            utility: score.utility,
            compliance: score.compliance,
          };
        }),
      }));
      return { message: { type: 'samples', version, temperature, samples }, transfer: [] };
    },
    dispose() {
      lm.dispose();
    },
  };
}
