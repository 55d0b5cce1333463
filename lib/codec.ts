/**
 * io-ts building blocks shared by the data model and the pipeline-file decoder: typed-array codecs
 * that survive JSON, numeric refinements with readable names, and an error reporter that names the
 * exact path of a bad field (`trajectories.2.rewards: expected finite numbers, got NaN at 3`).
 *
 * Typed arrays encode to `{ "$typed": "float32" | "float64" | "int32", "b64": "..." }`: base64 of
 * the little-endian bytes, so a JSON round trip is bit-exact (NaN payloads, −0, subnormals).
 * Decoding accepts either a typed array of the right class or that tagged form.
 *
 * ```ts
 * const text = encodeJSON(Trajectory, traj);           // string
 * const back = decodeJSON(Trajectory, text);           // Either<string[], Trajectory>
 * if (isLeft(back)) throw new Error(back.left.join('\n'));
 * ```
 */
import * as t from 'io-ts';
import { isLeft, left, right, type Either } from 'fp-ts/lib/Either.js';
import { closest, distance } from 'fastest-levenshtein';
import { fromBase64, toBase64 } from './base64.ts';

export type TypedKind = 'float32' | 'float64' | 'int32' | 'uint8';

interface TypedCtor<A> {
  new (buffer: ArrayBuffer, byteOffset?: number, length?: number): A;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
}

export interface TypedJSON {
  readonly $typed: TypedKind;
  readonly b64: string;
}

function isLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}
if (!isLittleEndian()) throw new Error('rxrl: big-endian hosts are not supported');

function describe(u: unknown): string {
  if (u === undefined) return 'undefined';
  if (u === null) return 'null';
  if (ArrayBuffer.isView(u)) return `${u.constructor.name}(${(u as unknown as { length: number }).length})`;
  if (Array.isArray(u)) return `an array of length ${u.length}`;
  if (typeof u === 'object') return 'an object';
  if (typeof u === 'string') return JSON.stringify(u.length > 40 ? `${u.slice(0, 40)}…` : u);
  return String(u);
}

function typedArrayCodec<A extends Float32Array | Float64Array | Int32Array | Uint8Array>(
  kind: TypedKind,
  ctor: TypedCtor<A>,
  finite: boolean,
): t.Type<A, TypedJSON, unknown> {
  const name = finite ? `${ctor.name} of finite numbers` : ctor.name;
  const check = (a: A, c: t.Context): t.Validation<A> => {
    if (finite) {
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(a[i]!)) {
          return t.failure(a, c, `expected finite numbers, got ${a[i]} at index ${i}`);
        }
      }
    }
    return t.success(a);
  };
  return new t.Type<A, TypedJSON, unknown>(
    name,
    (u): u is A => u instanceof ctor && (!finite || u.every((x) => Number.isFinite(x))),
    (u, c) => {
      if (u instanceof ctor) return check(u, c);
      if (typeof u === 'object' && u !== null && '$typed' in u && 'b64' in u) {
        const tagged = u as { $typed: unknown; b64: unknown };
        if (tagged.$typed !== kind) {
          return t.failure(u, c, `expected a ${ctor.name}, got a typed array tagged ${String(tagged.$typed)}`);
        }
        if (typeof tagged.b64 !== 'string') return t.failure(u, c, 'expected base64 text in "b64"');
        const bytes = fromBase64(tagged.b64);
        if (bytes === undefined) return t.failure(u, c, 'expected canonical base64 text in "b64"');
        if (bytes.length % ctor.BYTES_PER_ELEMENT !== 0) {
          return t.failure(u, c, `expected a multiple of ${ctor.BYTES_PER_ELEMENT} bytes, got ${bytes.length}`);
        }
        const copy = new ArrayBuffer(bytes.length);
        new Uint8Array(copy).set(bytes);
        return check(new ctor(copy), c);
      }
      return t.failure(u, c, `expected a ${ctor.name}, got ${describe(u)}`);
    },
    (a) => ({
      $typed: kind,
      b64: toBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)),
    }),
  );
}

/** Float32Array of finite values. */
export const Float32 = typedArrayCodec<Float32Array>('float32', Float32Array, true);
/** Float32Array, NaN and ±Inf allowed (masks, −Inf log-probs of padded slots). */
export const Float32Any = typedArrayCodec<Float32Array>('float32', Float32Array, false);
/** Uint8Array (flags). */
export const Uint8 = typedArrayCodec<Uint8Array>('uint8', Uint8Array, false);
/** Float64Array of finite values. */
export const Float64 = typedArrayCodec<Float64Array>('float64', Float64Array, true);
/** Int32Array. */
export const Int32 = typedArrayCodec<Int32Array>('int32', Int32Array, false);

function numberRefinement(name: string, ok: (n: number) => boolean): t.Type<number, number, unknown> {
  return new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && ok(u),
    (u, c) => (typeof u === 'number' && ok(u) ? t.success(u) : t.failure(u, c, `expected ${name}, got ${describe(u)}`)),
    t.identity,
  );
}

export const FiniteNumber = numberRefinement('a finite number', Number.isFinite);
export const NonNegativeInt = numberRefinement('a non-negative integer', (n) => Number.isInteger(n) && n >= 0);
export const PositiveInt = numberRefinement('a positive integer', (n) => Number.isInteger(n) && n > 0);
export const PositiveNumber = numberRefinement('a positive number', (n) => Number.isFinite(n) && n > 0);
export const NonNegativeNumber = numberRefinement('a non-negative number', (n) => Number.isFinite(n) && n >= 0);
export const UnitInterval = numberRefinement('a number in [0, 1]', (n) => n >= 0 && n <= 1);
export const Uint32 = numberRefinement('a uint32', (n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff);
/** A positive integer ≤ `max` (layer widths, counts with a sane ceiling). */
export const PositiveIntAtMost = (max: number) => numberRefinement(`a positive integer ≤ ${max}`, (n) => Number.isInteger(n) && n > 0 && n <= max);

/** "did you mean 'x'? " when some candidate is close enough to be a plausible typo, else ''. */
export function suggestion(word: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return '';
  const best = closest(word, candidates as string[]);
  const d = distance(word.toLowerCase(), best.toLowerCase());
  return d <= Math.max(2, Math.floor(best.length / 3)) ? `did you mean '${best}'? ` : '';
}

function describeValue(u: unknown): string {
  if (u === undefined) return 'nothing';
  if (u === null) return 'null';
  if (Array.isArray(u)) return `a list (${JSON.stringify(u).slice(0, 40)})`;
  if (typeof u === 'object') return 'an object';
  return JSON.stringify(u);
}

/** One of a fixed set of strings, with a suggestion for a near miss (config enums of operators and pipelines). */
export function oneOf<const V extends string>(values: readonly V[]): t.Type<V, V, unknown> {
  const name = values.map((v) => `'${v}'`).join(' | ');
  const ok = (u: unknown): u is V => typeof u === 'string' && (values as readonly string[]).includes(u);
  return new t.Type<V, V, unknown>(
    name,
    ok,
    (u, c) =>
      ok(u)
        ? t.success(u)
        : t.failure(
            u,
            c,
            `expected one of ${name}, got ${describeValue(u)}${typeof u === 'string' ? `; ${suggestion(u, values).replace(/ $/, '')}` : ''}`.replace(/; $/, ''),
          ),
    t.identity,
  );
}

/** One line per failure: `path.to.field: message`. The root path prints as `(root)`. */
export function formatErrors(errors: t.Errors): string[] {
  const lines = new Set<string>();
  for (const e of errors) {
    // Members of intersections and unions add index keys ('0', '1') that are not data paths.
    const path = e.context
      .filter((c, i) => {
        const parent = (i > 0 ? e.context[i - 1]!.type : undefined) as { _tag?: string } | undefined;
        return c.key !== '' && parent?._tag !== 'IntersectionType' && parent?._tag !== 'UnionType';
      })
      .map((c) => c.key)
      .join('.');
    const last = e.context[e.context.length - 1];
    const msg = e.message ?? `expected ${last?.type.name ?? 'a valid value'}, got ${describe(e.value)}`;
    lines.add(`${path === '' ? '(root)' : path}: ${msg}`);
  }
  return [...lines];
}

/** Decodes with a codec; failures become `path: message` lines. */
export function decode<A, O>(codec: t.Type<A, O, unknown>, value: unknown): Either<string[], A> {
  const r = codec.decode(value);
  return isLeft(r) ? left(formatErrors(r.left)) : right(r.right);
}

/** Decodes or throws a `DecodeError` whose message lists every bad path. */
export function decodeOrThrow<A, O>(codec: t.Type<A, O, unknown>, value: unknown, what = codec.name): A {
  const r = decode(codec, value);
  if (isLeft(r)) throw new DecodeError(what, r.left);
  return r.right;
}

export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  constructor(
    readonly what: string,
    readonly problems: string[],
  ) {
    super(`invalid ${what}:\n  ${problems.join('\n  ')}`);
  }
}

export function encodeJSON<A, O>(codec: t.Type<A, O, unknown>, value: A, indent?: number): string {
  return JSON.stringify(codec.encode(value), null, indent);
}

export function decodeJSON<A, O>(codec: t.Type<A, O, unknown>, text: string): Either<string[], A> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return left([`(root): malformed JSON: ${(e as Error).message}`]);
  }
  return decode(codec, parsed);
}
