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

/**
 * An elapsed time as `kubectl get` writes ages: `45s`, `12m`, `3h5m`, `2d4h` (the two largest
 * units, whole numbers); `0s` for anything under a second or negative.
 */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 || m >= 10 ? `${m}m` : `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
}

/** `55 %` of a fraction in 0..1 (clamped), rounded down so an unfinished job never shows 100 %. */
export function formatPercent(fraction: number): string {
  const clamped = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  return `${clamped === 1 ? 100 : Math.min(99, Math.floor(clamped * 100))} %`;
}
