import type { LogRecord } from './logger.js';

/** SGR colours per level (a terminal only; see {@link resolveLogOutput}). */
const LEVEL_STYLE: Record<LogRecord['level'], { readonly label: string; readonly sgr: string }> = {
  debug: { label: 'DEBUG', sgr: '90' },
  info: { label: 'INFO ', sgr: '36' },
  warning: { label: 'WARN ', sgr: '33' },
  error: { label: 'ERROR', sgr: '31;1' },
};

const paint = (color: boolean, sgr: string, text: string) => (color ? `\u001b[${sgr}m${text}\u001b[0m` : text);

/** A field value as `key=value` shows it: bare when it has no spaces or quotes, else JSON. */
function fieldValue(v: unknown): string {
  if (v instanceof Error) return fieldValue(v.cause instanceof Error ? `${v.message} ← ${v.cause.message}` : v.message);
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v === undefined) return 'undefined';
  return JSON.stringify(v, (_k, x: unknown) => (x instanceof Error ? x.message : x));
}

/**
 * One record as a line for people at a terminal: local time, level, component, message, then the
 * fields as `key=value` — e.g. `14:03:07.412 WARN  activity.model  model rejected  modelPath=…`.
 */
export function formatPretty(record: LogRecord, options: { readonly color: boolean }): string {
  const { ts, level, component, msg, ...fields } = record;
  const d = new Date(ts);
  const time = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  const style = LEVEL_STYLE[level];
  const rest = Object.entries(fields)
    .map(([k, v]) => `${paint(options.color, '2', `${k}=`)}${fieldValue(v)}`)
    .join(' ');
  return [
    paint(options.color, '2', time),
    paint(options.color, style.sgr, style.label),
    ...(component === undefined ? [] : [paint(options.color, '35', component.padEnd(14))]),
    level === 'error' || level === 'warning' ? paint(options.color, style.sgr, msg) : msg,
    ...(rest === '' ? [] : [` ${rest}`]),
  ].join(' ');
}
