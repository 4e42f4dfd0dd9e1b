/**
 * One place where untrusted input meets a schema: valibot parses, and the
 * first issue becomes a ValidationError naming the field, so the edge answers
 * 400 `{ error: { code: "invalid_request", message: "body.roles[2]: …" } }`.
 */
import * as v from "valibot";
import { ValidationError } from "./errors.js";

export function parseWith<S extends v.GenericSchema>(schema: S, value: unknown, what: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const path = issue.path?.map((p) => (typeof p.key === "number" ? `[${p.key}]` : `.${String(p.key)}`)).join("") ?? "";
  throw new ValidationError(`${what}${path}: ${issue.message}`);
}

/** JSON.parse for untrusted text with a size cap and a 400 instead of a SyntaxError. */
export function parseJsonText(text: string, maxChars: number, what: string): unknown {
  if (text.length > maxChars) throw new ValidationError(`${what} is larger than ${maxChars} bytes`, "too_large");
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(`${what} is not valid JSON`);
  }
}
