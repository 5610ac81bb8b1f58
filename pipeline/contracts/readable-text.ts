/**
 * How numbers and durations are written for people (progress lines, the Web UI's summaries and
 * details). Pure, so workflows write them the same way as the command line.
 */

/** `12,340`: a count with thousands separators (fixed, whatever the machine's locale). */
export function formatCount(n: number): string {
  const sign = n < 0 ? '-' : '';
  const [whole, fraction] = String(Math.abs(n)).split('.') as [string, string | undefined];
  return `${sign}${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${fraction === undefined ? '' : `.${fraction}`}`;
}

/** `m:ss` or `h:mm:ss`; `--:--` when unknown. */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '--:--';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** A span of time as a person says it: `500 ms`, `2 s`, `1.5 s`, `1 min`, `2 h`. */
export function formatSpan(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  return `${ms} ms`;
}

/** `55 %` of a fraction in 0..1 (clamped), rounded down so an unfinished job never shows 100 %. */
export function formatPercent(fraction: number): string {
  const clamped = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  return `${clamped === 1 ? 100 : Math.min(99, Math.floor(clamped * 100))} %`;
}
