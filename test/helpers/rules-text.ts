/**
 * A large, valid rules file as text: `count` distinct rules of about 100 bytes each (100k rules are
 * about 10 MB, the size of the file issue 9 measured). One generator for the rules tests and the
 * rules-load bench.
 */
export function manyRulesText(count: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const name = `rule_${String(i).padStart(6, '0')}`;
    lines.push(
      `- name: "${name}"`,
      `  condition: "rsi > ${i % 100}.5 && momentum > 0.0${i % 10}"`,
      `  signal: ${i % 2 === 0 ? '1.0' : '-1.0'}`,
      `  score: 0.${(i % 9) + 1}`,
      '',
    );
  }
  return lines.join('\n');
}
