/**
 * A small, fast, seeded PRNG (xoshiro128**) whose complete state is a plain number array, so a
 * producer can put it in a Temporal heartbeat and resume the exact same sequence later.
 *
 * Not for cryptography: it exists so that synthetic market data is reproducible from a seed.
 */

/**
 * The serialized generator: `[s0, s1, s2, s3, hasSpare, spare]` — four uint32 words of
 * xoshiro128** state, then the Box–Muller spare normal (`hasSpare` is 0 or 1). JSON round-trips
 * it exactly (doubles print with enough digits to parse back to the same value).
 */
export type SeededRandomState = readonly number[];

const STATE_LENGTH = 6;
const TWO_POW_32 = 4_294_967_296;
const TWO_POW_53 = 9_007_199_254_740_992;
const TWO_POW_26 = 67_108_864;

/** splitmix-style 32-bit mixer: spreads a seed over the state so nearby seeds differ fully. */
function mix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/**
 * Stateless 32-bit hash of a seed and a counter, in [0, 2^32). Used where a value must depend
 * only on its position (e.g. timestamp jitter), not on how many draws came before.
 */
export function hash32(seed: number, counter: number): number {
  const lo = counter >>> 0;
  const hi = Math.floor(counter / TWO_POW_32) >>> 0;
  return mix32(mix32(mix32(seed ^ 0x9e37_79b9) ^ lo) ^ Math.imul(hi, 0x2545_f491));
}

/**
 * xoshiro128** with a Box–Muller normal sampler.
 *
 * @example
 * ```ts
 * const rng = SeededRandom.fromSeed(42);
 * rng.next();                                   // uniform in [0, 1)
 * const saved = rng.state();                    // JSON-serializable
 * SeededRandom.fromState(saved).next() === rng.next(); // true
 * ```
 */
export class SeededRandom {
  readonly #s: Uint32Array;
  #spare: number | undefined;

  private constructor(words: readonly number[], spare: number | undefined) {
    this.#s = Uint32Array.from(words);
    this.#spare = spare;
  }

  /** A generator seeded from any safe integer (negative and > 2^32 seeds are fine). */
  static fromSeed(seed: number): SeededRandom {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer (got ${seed})`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    let x = mix32(lo ^ mix32(hi ^ 0x6a09_e667));
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e37_79b9) >>> 0;
      words.push(mix32(x));
    }
    // The all-zero state is the one fixed point of xoshiro; it cannot come out of mix32 in
    // practice, but guard it anyway.
    if (!words.some((w) => w !== 0)) words[0] = 1;
    return new SeededRandom(words, undefined);
  }

  /** Restores a generator from {@link SeededRandom.state}; throws `TypeError` on a malformed state. */
  static fromState(state: SeededRandomState): SeededRandom {
    // It may come straight out of JSON (a heartbeat), so check the shape rather than trust the type.
    const raw: unknown = state;
    if (!Array.isArray(raw) || raw.length !== STATE_LENGTH || !raw.every((n) => typeof n === 'number' && Number.isFinite(n))) {
      throw new TypeError(`random state must be an array of ${STATE_LENGTH} finite numbers`);
    }
    const words = state.slice(0, 4);
    if (!words.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32) || !words.some((w) => w !== 0)) {
      throw new TypeError('random state words must be uint32 values, not all zero');
    }
    const hasSpare = state[4];
    if (hasSpare !== 0 && hasSpare !== 1) throw new TypeError('random state flag must be 0 or 1');
    return new SeededRandom(words, hasSpare === 1 ? state[5] : undefined);
  }

  /** The full generator state; feeding it to {@link SeededRandom.fromState} continues the sequence. */
  state(): number[] {
    const s = this.#s;
    return [s[0], s[1], s[2], s[3], this.#spare === undefined ? 0 : 1, this.#spare ?? 0];
  }

  /** Next uint32 in [0, 2^32). */
  nextUint32(): number {
    const s = this.#s;
    const s0 = s[0],
      s1 = s[1],
      s2 = s[2],
      s3 = s[3];
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    s[1] = s1 ^ n2;
    s[0] = s0 ^ n3;
    s[2] = n2 ^ t;
    s[3] = rotl(n3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 bits of randomness. */
  next(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * TWO_POW_26 + b) / TWO_POW_53;
  }

  /** Standard normal draw (mean 0, sd 1) by Box–Muller; every second call uses the cached spare. */
  nextNormal(): number {
    const spare = this.#spare;
    if (spare !== undefined) {
      this.#spare = undefined;
      return spare;
    }
    const u1 = 1 - this.next(); // (0, 1]: log(0) must not happen
    const u2 = this.next();
    const radius = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.#spare = radius * Math.sin(theta);
    return radius * Math.cos(theta);
  }
}
