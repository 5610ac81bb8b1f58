import type { IbHistoricalBar } from './historical-bars.js';
import type { HistoricalChunkRequest } from './historical-request.js';

/** The contract of a historical request, as IB's `Contract` names its fields. */
export interface HistoricalContract {
  readonly symbol: string;
  readonly secType: string;
  readonly exchange: string;
  readonly currency: string;
  readonly primaryExch?: string;
}

/** IB's answer to one historical request. */
export interface HistoricalReply {
  readonly bars: readonly IbHistoricalBar[];
  /** IB answered "HMDS query returned no data" (error 162): an empty chunk, e.g. outside trading hours. */
  readonly noData: boolean;
  /** Time the request waited for the pacer before it was sent. */
  readonly pacingWaitMs: number;
}

/** A historical request another process sent. */
export interface PastRequest {
  /** Unique per request, e.g. `<requester>|<chunk index>|<time>`. */
  readonly id: string;
  readonly request: HistoricalChunkRequest;
  readonly atMs: number;
}

/** Progress of a request while it waits for the pacer or for IB, for heartbeats. */
export interface HistoricalProgress {
  readonly phase: 'pacing' | 'requesting';
  readonly waitedMs: number;
}

/**
 * Where historical bars come from: one paced `reqHistoricalData` per call. Requests wait for the
 * pacer rather than violate IB's limits.
 *
 * @throws HistoricalDataError when IB answers with an error (other than "no data"), does not answer
 *   in time, or the connection drops.
 */
export interface HistoricalBarsSource {
  /** Who sends this source's requests (one id per process and TWS): records of requests by another requester are news to its pacer. */
  readonly requesterId: string;
  /**
   * Tells the pacer about requests another process sent (a killed worker, another worker of the
   * same backfill), so the next requests keep IB's limits together with them. A record is counted
   * once per process, however often it is passed (by `id`).
   */
  recordPast(contract: HistoricalContract, requests: readonly PastRequest[]): void;
  request(
    contract: HistoricalContract,
    request: HistoricalChunkRequest,
    options: { readonly signal?: AbortSignal; readonly onProgress?: (progress: HistoricalProgress) => void },
  ): Promise<HistoricalReply>;
}
