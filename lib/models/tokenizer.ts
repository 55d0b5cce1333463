/**
 * Hugging Face tokenizers and chat templates, offline: `tokenizer.json` runs through the
 * maintained pure-JS `@huggingface/tokenizers` (BPE, WordPiece, Unigram with their normalizers,
 * pre-tokenizers, post-processors and decoders), chat templates through `@huggingface/jinja`.
 *
 * The chat template comes from, in order: `tokenizer_config.json`'s `chat_template` (a string, or
 * a list of `{ name, template }` from which `default` — else the first — is used),
 * `chat_template.jinja`, or `chat_template.json` in the same folder. It is rendered with
 * `messages`, `add_generation_prompt`, the special tokens (`bos_token`, `eos_token`, `pad_token`,
 * `unk_token`) and any extra variables, as transformers' `apply_chat_template` does.
 *
 * ```ts
 * const tok = await HfTokenizer.fromFolder('models/Qwen2-0.5B-Instruct');
 * const ids = tok!.encode('Hello world');                 // number[]
 * tok!.decode(ids);                                        // 'Hello world'
 * const text = tok!.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }],
 *   { addGenerationPrompt: true });
 * ```
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
  readonly [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the assistant turn's opening (default false). */
  addGenerationPrompt?: boolean;
  /** Extra template variables (tools, documents, enable_thinking, …). */
  extra?: Readonly<Record<string, unknown>>;
}

export class TokenizerError extends Error {
  override readonly name = 'TokenizerError';
}

/** A special token in tokenizer_config.json: a string or an AddedToken dict `{ content, ... }`. */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

function pickTemplate(t: unknown): string | null {
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const pick = named.find((x) => x.name === 'default') ?? named[0];
    return typeof pick?.template === 'string' ? pick.template : null;
  }
  return null;
}

export class HfTokenizer {
  private readonly tok: Tokenizer;
  private compiled: Template | null = null;
  readonly chatTemplate: string | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;

  constructor(
    tokenizerJson: object,
    readonly tokenizerConfig: Readonly<Record<string, unknown>> = {},
    chatTemplate?: string | null,
  ) {
    try {
      this.tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json could not be loaded: ${(e as Error).message}`);
    }
    this.chatTemplate = chatTemplate ?? pickTemplate(tokenizerConfig['chat_template']);
    this.bosToken = tokenString(tokenizerConfig['bos_token']);
    this.eosToken = tokenString(tokenizerConfig['eos_token']);
    this.padToken = tokenString(tokenizerConfig['pad_token']);
    this.unkToken = tokenString(tokenizerConfig['unk_token']);
  }

  /** Loads `tokenizer.json` (+ `tokenizer_config.json`, chat template files) from a folder; null without tokenizer.json. */
  static async fromFolder(folder: string): Promise<HfTokenizer | null> {
    const tj = join(folder, 'tokenizer.json');
    if (!existsSync(tj)) return null;
    const readJson = async (p: string): Promise<Record<string, unknown>> => {
      try {
        return JSON.parse(await readFile(p, 'utf8')) as Record<string, unknown>;
      } catch (e) {
        throw new TokenizerError(`${p}: ${(e as Error).message}`);
      }
    };
    const json = await readJson(tj);
    const tc = join(folder, 'tokenizer_config.json');
    const cfg = existsSync(tc) ? await readJson(tc) : {};
    let template = pickTemplate(cfg['chat_template']);
    if (template === null && existsSync(join(folder, 'chat_template.jinja'))) template = await readFile(join(folder, 'chat_template.jinja'), 'utf8');
    if (template === null && existsSync(join(folder, 'chat_template.json'))) {
      template = pickTemplate((await readJson(join(folder, 'chat_template.json')))['chat_template']);
    }
    try {
      return new HfTokenizer(json, cfg, template);
    } catch (e) {
      throw new TokenizerError(`${tj}: ${(e as Error).message}`);
    }
  }

  /** Token ids of `text` (with the post-processor's special tokens unless `addSpecialTokens: false`). */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** Token strings of `text`. */
  tokenize(text: string, opts: { addSpecialTokens?: boolean } = {}): string[] {
    return this.tok.tokenize(text, { add_special_tokens: opts.addSpecialTokens ?? false });
  }

  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tok.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** Vocabulary size including added tokens. */
  get vocabSize(): number {
    return this.tok.get_vocab(true).size;
  }

  get bosTokenId(): number | undefined {
    return this.bosToken === null ? undefined : this.tokenToId(this.bosToken);
  }

  get eosTokenId(): number | undefined {
    return this.eosToken === null ? undefined : this.tokenToId(this.eosToken);
  }

  get padTokenId(): number | undefined {
    return this.padToken === null ? undefined : this.tokenToId(this.padToken);
  }

  /** Renders the chat template (see the module doc). */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) throw new TokenizerError('this tokenizer has no chat_template');
    if (!this.compiled) {
      try {
        this.compiled = new Template(this.chatTemplate);
      } catch (e) {
        throw new TokenizerError(`chat_template does not parse: ${(e as Error).message}`);
      }
    }
    const vars: Record<string, unknown> = {
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
      pad_token: this.padToken ?? '',
      unk_token: this.unkToken ?? '',
      ...opts.extra,
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: opts.addGenerationPrompt ?? false,
    };
    return this.compiled.render(vars);
  }

  /** The chat rendered and encoded (the template supplies the special tokens, so none are added). */
  encodeChat(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }
}
