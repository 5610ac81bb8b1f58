/**
 * The TWS API socket protocol as a TWS speaks it to a client (server side), for the fake TWS.
 * Written from IB's protocol description and from reading how @stoqey/ib 1.6.10 encodes and decodes
 * (node_modules/@stoqey/ib/dist/core/io/{socket,encoder,decoder}.js), never copied.
 *
 * Framing ("V100+", every server version we speak):
 * - the client opens with the bytes `API\0`, a 4-byte big-endian length, and its version range as
 *   text, e.g. `v100..193` (optionally followed by a space and connect options);
 * - every later message, both ways, is a 4-byte big-endian length followed by that many bytes of
 *   UTF-8 fields, each terminated by NUL: `71\02\017\0\0` is START_API version 2, client id 17 and
 *   empty optional capabilities. Booleans travel as `0`/`1`, unset values as empty fields.
 * - the server's first message is its version and the connection time: `187\020251024 14:02:01 UTC\0`.
 */

/** Messages a client sends (the ids the fake TWS understands), as @stoqey/ib's OUT_MSG_ID numbers them. */
export const CLIENT_MSG = {
  REQ_IDS: 8,
  REQ_CONTRACT_DATA: 9,
  REQ_MANAGED_ACCTS: 17,
  REQ_HISTORICAL_DATA: 20,
  CANCEL_HISTORICAL_DATA: 25,
  REQ_CURRENT_TIME: 49,
  REQ_REAL_TIME_BARS: 50,
  CANCEL_REAL_TIME_BARS: 51,
  REQ_MARKET_DATA_TYPE: 59,
  START_API: 71,
  REQ_TICK_BY_TICK_DATA: 97,
  CANCEL_TICK_BY_TICK_DATA: 98,
} as const;

/** Messages a TWS sends (IN_MSG_ID on the client side). */
export const SERVER_MSG = {
  ERR_MSG: 4,
  NEXT_VALID_ID: 9,
  CONTRACT_DATA: 10,
  MANAGED_ACCTS: 15,
  HISTORICAL_DATA: 17,
  CURRENT_TIME: 49,
  REAL_TIME_BARS: 50,
  CONTRACT_DATA_END: 52,
  TICK_BY_TICK: 99,
} as const;

/**
 * Server versions whose encodings change a message the fake TWS sends or reads (MIN_SERVER_VER_*
 * of IB's API). The fake speaks every version from {@link MIN_FAKE_SERVER_VERSION} to
 * {@link MAX_FAKE_SERVER_VERSION}.
 */
export const SERVER_VERSION = {
  /** reqContractDetails carries `issuerId` from here on. */
  BOND_ISSUERID: 176,
  /** CONTRACT_DATA carries FUND_* fields (for secType FUND only) from here on. */
  FUND_DATA_FIELDS: 179,
  /** CONTRACT_DATA carries `lastTradeDate` after lastTradeDateOrContractMonth from here on. */
  LAST_TRADE_DATE: 182,
  /** CONTRACT_DATA ends with a list of ineligibility reasons from here on. */
  INELIGIBILITY_REASONS: 186,
  /** The highest version @stoqey/ib 1.6.10 accepts (CME_TAGGING_FIELDS_IN_OPEN_ORDER). */
  STOQEY_MAX: 193,
} as const;

/** Lowest server version the fake TWS will negotiate: TWS 10.19-era, the first with issuerId on contract requests. */
export const MIN_FAKE_SERVER_VERSION = SERVER_VERSION.BOND_ISSUERID;
/** Highest it will negotiate. Above 193 a TWS changes ERR_MSG (error time) and historical data (a separate end message). */
export const MAX_FAKE_SERVER_VERSION = SERVER_VERSION.STOQEY_MAX;
/** What a fake TWS offers unless told otherwise: the version of TWS 10.30 (RFQ_FIELDS). */
export const DEFAULT_FAKE_SERVER_VERSION = 187;

/** Error and system messages the fake TWS sends, with IB's codes and texts (TWS API "Message Codes"). */
export const TWS_MESSAGES = {
  /** Client → TWS messages over 50 per second (IB: "Max rate of messages per second has been exceeded."). */
  MAX_RATE: { code: 100, text: 'Max rate of messages per second has been exceeded.' },
  /** Market data lines exhausted. */
  MAX_TICKERS: { code: 101, text: 'Max number of tickers has been reached.' },
  DUPLICATE_TICKER: { code: 102, text: 'Duplicate ticker ID.' },
  /** Historical data pacing (IB's "Historical Data Limitations" page, verbatim). */
  HISTORICAL_PACING: { code: 162, text: 'Historical Market Data Service error message:Historical data request pacing violation' },
  HISTORICAL_NO_DATA: { code: 162, text: 'Historical Market Data Service error message:HMDS query returned no data' },
  HISTORICAL_TOO_LONG: { code: 162, text: 'Historical Market Data Service error message:Time length exceed max.' },
  HISTORICAL_CANCELLED: { code: 162, text: 'Historical Market Data Service error message:API historical data query cancelled' },
  NO_SECURITY: { code: 200, text: 'No security definition has been found for the request' },
  UNKNOWN_TICKER: { code: 300, text: "Can't find EId with tickerId:" },
  INVALID_REQUEST: { code: 321, text: 'Error validating request.' },
  /** More simultaneous historical requests than IB allows (text as TWS words it, to the best of our knowledge). */
  HISTORICAL_MAX_OPEN: { code: 322, text: 'Error processing request. Only 50 simultaneous API historical data requests allowed.' },
  CLIENT_ID_IN_USE: { code: 326, text: 'Unable to connect as the client id is already in use. Retry with a unique client id.' },
  /** Real-time bars share the historical pacing limits; TWS reports a violation as 420. */
  REALTIME_PACING: { code: 420, text: 'Invalid Real-time Query:Historical data request pacing violation' },
  CONNECTIVITY_LOST: { code: 1100, text: 'Connectivity between IB and Trader Workstation has been lost.' },
  RESTORED_DATA_LOST: { code: 1101, text: 'Connectivity between IB and Trader Workstation has been restored - data lost.' },
  RESTORED_DATA_KEPT: { code: 1102, text: 'Connectivity between IB and Trader Workstation has been restored - data maintained.' },
  MARKET_FARM_OK: { code: 2104, text: 'Market data farm connection is OK:usfarm' },
  HMDS_FARM_OK: { code: 2106, text: 'HMDS data farm connection is OK:ushmds' },
  SECDEF_FARM_OK: { code: 2158, text: 'Sec-def data farm connection is OK:secdefnj' },
} as const;

/** A field as it goes on the wire: numbers in JS notation, booleans as 0/1, undefined as empty. */
export type Field = string | number | boolean | undefined;

function fieldText(value: Field): string {
  if (value === undefined) return '';
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

/** One message, length-prefixed: the fields, each NUL-terminated. */
export function frame(fields: readonly Field[]): Buffer {
  const body = Buffer.from(fields.map((f) => `${fieldText(f)}\0`).join(''), 'utf8');
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** What a client sent: its opening version range, or one message's fields. */
export type ClientFrame =
  | { readonly type: 'hello'; readonly minVersion: number; readonly maxVersion: number; readonly options: string }
  | { readonly type: 'message'; readonly fields: string[] };

const API_PREFIX = Buffer.from('API\0', 'latin1');
/** A message longer than this is a broken client, not a message (IB's client caps at 0xFFFFFF). */
const MAX_MESSAGE = 0xff_ffff;

/** Thrown on bytes that are not the TWS API protocol; the fake TWS closes that connection. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

/**
 * Incremental reader of a client's byte stream: `push` what the socket delivered, then take
 * complete frames with `next` until it returns undefined.
 */
export class ClientFrameReader {
  #buffer: Buffer = Buffer.alloc(0);
  #greeted = false;

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
  }

  next(): ClientFrame | undefined {
    if (!this.#greeted) {
      if (this.#buffer.length < API_PREFIX.length) return undefined;
      if (!this.#buffer.subarray(0, API_PREFIX.length).equals(API_PREFIX)) {
        throw new ProtocolError(`expected the API\\0 greeting, got ${JSON.stringify(this.#buffer.subarray(0, 8).toString('latin1'))}`);
      }
      const text = this.#take(API_PREFIX.length);
      if (text === undefined) return undefined;
      this.#greeted = true;
      const match = /^v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?$/.exec(text);
      if (!match) throw new ProtocolError(`the version range must look like v100..193 (got ${JSON.stringify(text)})`);
      const minVersion = Number(match[1]);
      return { type: 'hello', minVersion, maxVersion: match[2] === undefined ? minVersion : Number(match[2]), options: match[3] ?? '' };
    }
    const text = this.#take(0);
    if (text === undefined) return undefined;
    const fields = text.split('\0');
    // Every field is NUL-terminated, so the split leaves one empty string after the last.
    if (fields.pop() !== '') throw new ProtocolError(`a message must end with NUL (got ${JSON.stringify(text.slice(-20))})`);
    return { type: 'message', fields };
  }

  /** The length-prefixed payload starting at `offset` as text, consuming it; undefined while incomplete. */
  #take(offset: number): string | undefined {
    if (this.#buffer.length < offset + 4) return undefined;
    const length = this.#buffer.readUInt32BE(offset);
    if (length > MAX_MESSAGE) throw new ProtocolError(`message length ${length} exceeds ${MAX_MESSAGE}`);
    if (this.#buffer.length < offset + 4 + length) return undefined;
    const text = this.#buffer.subarray(offset + 4, offset + 4 + length).toString('utf8');
    this.#buffer = this.#buffer.subarray(offset + 4 + length);
    return text;
  }
}

/** Reads a message's fields in order, with the same conversions a TWS applies. */
export class FieldReader {
  readonly #fields: readonly string[];
  #at = 0;

  constructor(fields: readonly string[], start = 0) {
    this.#fields = fields;
    this.#at = start;
  }

  str(): string {
    if (this.#at >= this.#fields.length) throw new ProtocolError(`message ended after ${this.#fields.length} fields (wanted field ${this.#at + 1})`);
    return this.#fields[this.#at++];
  }

  int(): number {
    const text = this.str();
    if (text === '') return 0;
    const value = Number(text);
    if (!Number.isInteger(value)) throw new ProtocolError(`field ${this.#at} must be an integer (got ${JSON.stringify(text)})`);
    return value;
  }

  num(): number {
    const text = this.str();
    if (text === '') return 0;
    const value = Number(text);
    if (!Number.isFinite(value)) throw new ProtocolError(`field ${this.#at} must be a number (got ${JSON.stringify(text)})`);
    return value;
  }

  bool(): boolean {
    return this.int() !== 0;
  }

  /** Fields not read yet (a message with more fields than its version should have is a protocol error). */
  get remaining(): number {
    return this.#fields.length - this.#at;
  }
}

/** The contract fields most requests carry, in the order they carry them. */
export interface WireContract {
  readonly conId: number;
  readonly symbol: string;
  readonly secType: string;
  readonly lastTradeDateOrContractMonth: string;
  readonly strike: number;
  readonly right: string;
  readonly multiplier: string;
  readonly exchange: string;
  readonly primaryExch: string;
  readonly currency: string;
  readonly localSymbol: string;
  readonly tradingClass: string;
}

/** conId … tradingClass, as reqTickByTickData, reqRealTimeBars and reqHistoricalData send them. */
export function readContract(r: FieldReader): WireContract {
  return {
    conId: r.int(),
    symbol: r.str(),
    secType: r.str(),
    lastTradeDateOrContractMonth: r.str(),
    strike: r.num(),
    right: r.str(),
    multiplier: r.str(),
    exchange: r.str(),
    primaryExch: r.str(),
    currency: r.str(),
    localSymbol: r.str(),
    tradingClass: r.str(),
  };
}

/** `yyyyMMdd HH:mm:ss` of an epoch-ms time in UTC (TWS's date format, without the zone). */
export function twsDateTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)} ${iso.slice(11, 19)}`;
}
