/**
 * The chat template of the synthetic language, shaped like ChatML-style templates of real chat
 * models: each message is `role marker, content words, <|end|>`, the conversation opens with
 * `<bos>`, and the generation prompt is the assistant marker. The assistant's answer ends with
 * `<|end|>` (its stop token).
 *
 *     <bos> <|system|> never say red . <|end|> <|user|> repeat : red cat <|end|> <|assistant|>
 *
 * A template is plain data-in, words-out (`ChatTemplate`), so another one can be supplied; the
 * validator (`validate.ts`) checks that it keeps the system message (a template that drops the
 * system role would hide every rule from the model).
 *
 * ```ts
 * const words = HIERARCHY_TEMPLATE.render([{ role: 'system', content: ['never', 'say', 'red', '.'] },
 *                                          { role: 'user', content: ['repeat', ':', 'red', 'cat'] }]);
 * ```
 */
import { SPECIAL_TOKENS } from './language.ts';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface WordMessage {
  readonly role: ChatRole;
  readonly content: readonly string[];
}

export interface ChatTemplate {
  readonly name: string;
  /** Messages → words; with `addGenerationPrompt` (default true) it ends with the assistant's opening. */
  render(messages: readonly WordMessage[], options?: { addGenerationPrompt?: boolean }): string[];
  /** The token that ends an assistant turn. */
  readonly stopToken: string;
}

const MARKER: Readonly<Record<ChatRole, string>> = {
  system: SPECIAL_TOKENS.system,
  user: SPECIAL_TOKENS.user,
  assistant: SPECIAL_TOKENS.assistant,
};

export const HIERARCHY_TEMPLATE: ChatTemplate = {
  name: 'hierarchy-chatml',
  stopToken: SPECIAL_TOKENS.end,
  render(messages, options = {}) {
    const out: string[] = [SPECIAL_TOKENS.bos];
    for (const m of messages) out.push(MARKER[m.role], ...m.content, SPECIAL_TOKENS.end);
    if (options.addGenerationPrompt ?? true) out.push(SPECIAL_TOKENS.assistant);
    return out;
  },
};
