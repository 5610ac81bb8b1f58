// The fake TWS: a protocol-faithful stand-in for Interactive Brokers' Trader Workstation that the
// real @stoqey/ib client talks to over loopback (see fake-tws.ts for what it speaks).
export { FakeTws } from './fake-tws.js';
export type { ConnectionInfo, FakeContract, FakeTwsOptions, ReceivedRequest, SentBar, SentTick, Violation } from './fake-tws.js';
export { aggregateBars, BAR_SIZES, maxDurationSec, parseDuration, parseEndDateTime, WHAT_TO_SHOW } from './historical.js';
export type { HistoricalBar, WhatToShow } from './historical.js';
export { IB_PACING_LIMITS, PacingReferee } from './pacing-referee.js';
export type { PacingLimits, PacingRule } from './pacing-referee.js';
export { DEFAULT_FAKE_SERVER_VERSION, MAX_FAKE_SERVER_VERSION, MIN_FAKE_SERVER_VERSION, TWS_MESSAGES } from './protocol.js';
export { generateTape, readTapeFile, sortTicks, tapeSymbols, writeTapeFile } from './tape.js';
export type { GenerateTapeOptions, Tape, TapeTick } from './tape.js';
