/**
 * The pipeline-file codec: io-ts building blocks that decode a YAML/JSON pipeline file into exactly
 * the typed config the TypeScript API takes, with errors that name the path and what was expected.
 *
 * - `section(props)`: an object whose keys are all optional (a file states only what differs from
 *   the defaults) and whose unknown keys are rejected with the nearest valid name:
 *   `algorithm.groupSzie: unknown key; did you mean 'groupSize'? (valid: ...)`.
 * - `oneOf(['grpo', 'rloo'])`: a string enum that suggests the nearest value.
 * - `resolve(defaults, partial)`: a deep merge; arrays and scalars replace, objects merge.
 * - `applySet(raw, 'algorithm.groupSize=16')`: a `--set` override; the value is parsed as YAML, so
 *   `16` is a number, `true` a boolean and `[64, 64]` a list.
 * - `parsePipelineText(text, name)`: YAML (`.yaml`, `.yml`) or JSON (`.json`) by the name's extension,
 *   with the line and column of a syntax error (`readPipelineFile(path)` in pipelines/config-file.ts
 *   reads a file under Node; the browser playground parses pasted text with this).
 * - Limits, checked before anything is parsed or merged: a file or `--set` value of at most
 *   `MAX_CONFIG_BYTES` (1 MB), nesting of at most `MAX_CONFIG_DEPTH` (64) levels, at most 100 YAML
 *   alias expansions, and no `__proto__`, `constructor` or `prototype` key anywhere (they would
 *   reach `Object.prototype` through a merge).
 *
 * ```ts
 * const Algo = section({ groupSize: PositiveInt, estimator: oneOf(['grpo', 'drgrpo', 'rloo']) });
 * decode(Algo, { groupSzie: 8 });  // left(["groupSzie: unknown key; did you mean 'groupSize'? ..."])
 * ```
 */
import * as t from 'io-ts';
import { oneOf, suggestion } from '../lib/codec.ts';
import { parseDocument, parse as parseYaml } from 'yaml';

export { oneOf, suggestion };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly problems: string[] = [message],
  ) {
    super(message);
  }
}

function describe(u: unknown): string {
  if (u === undefined) return 'nothing';
  if (u === null) return 'null';
  if (Array.isArray(u)) return `a list (${JSON.stringify(u).slice(0, 40)})`;
  if (typeof u === 'object') return 'an object';
  return JSON.stringify(u);
}

/**
 * An object with optional, known keys. Decodes to `Partial<…>` of the props' types (deeply
 * partial when the props are sections themselves).
 */
export function section<P extends t.Props>(props: P, name = 'section'): t.Type<{ [K in keyof P]?: t.TypeOf<P[K]> }, unknown, unknown> {
  const keys = Object.keys(props);
  const inner = t.partial(props);
  return new t.Type<{ [K in keyof P]?: t.TypeOf<P[K]> }, unknown, unknown>(
    name,
    (u): u is { [K in keyof P]?: t.TypeOf<P[K]> } => inner.is(u),
    (u, c) => {
      if (typeof u !== 'object' || u === null || Array.isArray(u)) {
        return t.failure(u, c, `expected an object with keys ${keys.join(', ')}, got ${describe(u)}`);
      }
      const errors: t.ValidationError[] = [];
      for (const k of Object.keys(u)) {
        if (!keys.includes(k)) {
          errors.push({
            value: (u as Record<string, unknown>)[k],
            context: [...c, { key: k, type: t.unknown, actual: (u as Record<string, unknown>)[k] }],
            message: `unknown key; ${suggestion(k, keys)}(valid: ${keys.join(', ')})`,
          });
        }
      }
      // `undefined` values are treated as absent (so a merge never writes undefined over a default).
      const present = Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined));
      const r = inner.validate(present, c);
      if (r._tag === 'Left') errors.push(...r.left);
      return errors.length > 0 ? t.failures(errors) : t.success(r._tag === 'Right' ? (r.right as { [K in keyof P]?: t.TypeOf<P[K]> }) : {});
    },
    t.identity,
  );
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !ArrayBuffer.isView(x);
}

export type DeepPartial<T> = T extends readonly unknown[] | ArrayBufferView | ((...a: never[]) => unknown)
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/**
 * The pipeline-file codec derived from a full config codec: every object (`t.type`, `t.strict`,
 * `t.partial`, intersections of them) becomes a `section` (keys optional, unknown keys refused with
 * the nearest name), recursively; unions (`null | {...}`) are derived member by member; everything
 * else (numbers, enums, lists) is kept as is. So the file codec cannot drift from the config.
 */
export function deepPartial<C extends t.Mixed>(codec: C, name = codec.name): t.Type<DeepPartial<t.TypeOf<C>>, unknown, unknown> {
  return derivePartial(codec, name);
}

function derivePartial(codec: t.Mixed, name: string): t.Mixed {
  const props = objectProps(codec);
  if (props) {
    const derived: t.Props = {};
    for (const [k, v] of Object.entries(props)) derived[k] = derivePartial(v, k);
    return section(derived, name);
  }
  if (codec instanceof t.UnionType) {
    const members = (codec.types as t.Mixed[]).map((m) => derivePartial(m, name));
    return members.length >= 2 ? t.union(members as [t.Mixed, t.Mixed, ...t.Mixed[]], name) : codec;
  }
  return codec;
}

/** The props of an object codec (through `t.strict`/`t.exact`, `t.readonly` and intersections), else undefined. */
function objectProps(codec: t.Mixed): t.Props | undefined {
  if (codec instanceof t.InterfaceType || codec instanceof t.PartialType) return codec.props as t.Props;
  if (codec instanceof t.ExactType || codec instanceof t.ReadonlyType) return objectProps(codec.type as t.Mixed);
  if (codec instanceof t.IntersectionType) {
    const all: t.Props = {};
    for (const m of codec.types as t.Mixed[]) {
      const p = objectProps(m);
      if (!p) return undefined;
      Object.assign(all, p);
    }
    return all;
  }
  return undefined;
}

/**
 * The entries of `keys` of an object: a pipeline config takes the operator knobs it exposes from the
 * operator's io-ts props, and their defaults from the operator's default values.
 */
export function pick<P extends object, K extends keyof P & string>(props: P, keys: readonly K[]): Pick<P, K> {
  const out: Partial<Pick<P, K>> = {};
  for (const k of keys) out[k] = props[k];
  return out as Pick<P, K>;
}

/** Deep merge of `partial` over `defaults`: objects merge key by key, everything else replaces. */
export function resolve<T>(defaults: T, partial: DeepPartial<T> | undefined): T {
  return merge(defaults, partial) as T;
}

function merge(defaults: unknown, partial: unknown): unknown {
  if (partial === undefined) return defaults;
  if (!isPlainObject(defaults) || !isPlainObject(partial)) return partial;
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(partial)) {
    if (v === undefined) continue;
    out[k] = k in defaults ? merge(defaults[k], v) : v;
  }
  return out;
}

/** The largest pipeline file or `--set` value accepted, in bytes. */
export const MAX_CONFIG_BYTES = 1 << 20;
/** The deepest nesting of objects and lists accepted in a pipeline file or `--set` value. */
export const MAX_CONFIG_DEPTH = 64;
/** Alias expansions a YAML document may make (the "billion laughs" bound). */
export const MAX_YAML_ALIASES = 100;
/** Keys that would reach `Object.prototype` (or a constructor) through a merge or an assignment. */
export const FORBIDDEN_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

/**
 * Refuses forbidden keys and nesting deeper than `MAX_CONFIG_DEPTH` anywhere in a raw config
 * value; `where` names the file (or `--set`) in the error. Returns the value for chaining.
 */
export function checkConfigTree<T>(value: T, where: string): T {
  const walk = (v: unknown, path: string, depth: number): void => {
    if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return;
    if (depth > MAX_CONFIG_DEPTH) throw new ConfigError(`${where}: ${path || '(root)'}: nested deeper than ${MAX_CONFIG_DEPTH} levels`);
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`, depth + 1));
      return;
    }
    for (const k of Object.keys(v)) {
      const at = path ? `${path}.${k}` : k;
      if (FORBIDDEN_KEYS.includes(k)) throw new ConfigError(`${where}: ${at}: the key '${k}' is not allowed (${FORBIDDEN_KEYS.join(', ')} are refused)`);
      walk((v as Record<string, unknown>)[k], at, depth + 1);
    }
  };
  walk(value, '', 0);
  return value;
}

/** Bytes of a string in UTF-8. */
function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Applies one `--set path=value` to a raw (undecoded) config object, in place. */
export function applySet(raw: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--set ${assignment}: expected path=value, e.g. --set algorithm.groupSize=16`);
  if (utf8Length(assignment) > MAX_CONFIG_BYTES) {
    throw new ConfigError(`--set ${assignment.slice(0, Math.min(eq > 0 ? eq : 40, 80))}=...: longer than ${MAX_CONFIG_BYTES} bytes`);
  }
  const path = assignment.slice(0, eq).trim().split('.');
  if (path.some((p) => p === '')) throw new ConfigError(`--set ${assignment}: empty key in path '${assignment.slice(0, eq)}'`);
  const bad = path.find((p) => FORBIDDEN_KEYS.includes(p));
  if (bad !== undefined) throw new ConfigError(`--set ${assignment.slice(0, eq)}: the key '${bad}' is not allowed (${FORBIDDEN_KEYS.join(', ')} are refused)`);
  let value: unknown;
  try {
    value = parseYaml(assignment.slice(eq + 1), { maxAliasCount: MAX_YAML_ALIASES, logLevel: 'error' });
  } catch (e) {
    throw new ConfigError(`--set ${assignment.slice(0, 200)}: the value is not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  checkConfigTree(value, `--set ${assignment.slice(0, eq)}`);
  let node: Record<string, unknown> = raw;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (!isPlainObject(next)) throw new ConfigError(`--set ${assignment}: '${key}' is ${describe(next)}, not a section`);
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/** The extension of a file name or path (`.yaml`), lower case; '' for none or a dotfile. */
function extensionOf(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot).toLowerCase() : '';
}

/**
 * Parses a pipeline file's text into a raw object (what the codecs then decode): YAML or JSON by
 * the extension of `name`, syntax errors with line and column, and the limits of the module doc.
 * Errors are `ConfigError`s that start with `name`.
 * @param text The file's contents.
 * @param name The file's name or path (its extension picks the syntax; errors start with it).
 * @returns The raw top-level mapping.
 */
export function parsePipelineText(text: string, name: string): Record<string, unknown> {
  const path = name;
  const size = utf8Length(text);
  if (size > MAX_CONFIG_BYTES) throw new ConfigError(`${path}: ${size} bytes; pipeline files are limited to ${MAX_CONFIG_BYTES} bytes (1 MB)`);
  const ext = extensionOf(path);
  let value: unknown;
  if (ext === '.json') {
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${path}: malformed JSON: ${(e as Error).message}`);
    }
  } else if (ext === '.yaml' || ext === '.yml') {
    let doc: ReturnType<typeof parseDocument>;
    try {
      doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
    } catch (e) {
      throw new ConfigError(`${path}: cannot parse YAML (${(e as Error).message.split('\n')[0]})`);
    }
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : 'unknown position';
      throw new ConfigError(`${path}: malformed YAML at ${where}: ${e.message.split('\n')[0]}`);
    }
    try {
      value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0];
      throw new ConfigError(
        /alias/i.test(msg ?? '')
          ? `${path}: YAML aliases expand too far (more than ${MAX_YAML_ALIASES} alias expansions; a "billion laughs" document?)`
          : `${path}: cannot read YAML (${msg})`,
      );
    }
  } else {
    throw new ConfigError(`${path}: unknown pipeline file type '${ext}'; expected .yaml, .yml or .json`);
  }
  if (!isPlainObject(value)) throw new ConfigError(`${path}: expected a mapping at the top level, got ${describe(value)}`);
  return checkConfigTree(value, path);
}
