/**
 * Turns the bench's measurements into the printed table (and the cost
 * tables): plain text, aligned columns, units in every label.
 */
import type { CostLine } from "./cost.js";

export type Row = [label: string, value: string, note?: string];

export function section(title: string, rows: Row[]): string {
  const w0 = Math.max(...rows.map((r) => r[0].length), 10);
  const w1 = Math.max(...rows.map((r) => r[1].length), 6);
  const lines = rows.map(([a, b, c]) => `  ${a.padEnd(w0)}  ${b.padStart(w1)}${c ? "  " + c : ""}`);
  return `${title}\n${lines.join("\n")}`;
}

export function num(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function mib(bytes: number): string {
  return `${num(bytes / 2 ** 20, 0)} MiB`;
}

export function verdict(ok: boolean, target: string): string {
  return `${ok ? "PASS" : "FAIL"} (target ${target})`;
}

export function usd(n: number): string {
  return `$${n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

function qty(n: number): string {
  if (n >= 1e9) return `${num(n / 1e9, 2)} B`;
  if (n >= 1e6) return `${num(n / 1e6, 2)} M`;
  if (n >= 1e3) return num(n, 0);
  return num(n, 2);
}

/** A markdown table of a bill, for docs/operations.md and for the terminal. */
export function costTable(lines: CostLine[], totalUsd: number): string {
  const out = ["| item | quantity / month | included | how | cost |", "|---|---:|---:|---|---:|"];
  for (const l of lines) out.push(`| ${l.item} | ${qty(l.quantity)} ${l.unit} | ${l.included ? qty(l.included) : "–"} | ${l.formula} | ${usd(l.usd)} |`);
  out.push(`| **total** | | | | **${usd(totalUsd)}** |`);
  return out.join("\n");
}
