/**
 * Control-socket messages. Every request names the protocol version, so a client from a newer
 * or older den gets a clear answer instead of a misread.
 */
export const IPC_VERSION = 1;

export interface IpcRequest {
  v: number;
  id: number;
  method: string;
  params: Record<string, unknown>;
}

export interface IpcErrorBody {
  code: string;
  message: string;
  hint?: string;
  exit: number;
}

export type IpcResponse =
  | { v: number; id: number; ok: true; result: unknown }
  | { v: number; id: number; ok: false; error: IpcErrorBody };

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Validates an untrusted request; returns a reason string when it is malformed. */
export function parseRequest(x: unknown): IpcRequest | string {
  if (!isRecord(x)) return "request is not a JSON object";
  if (typeof x.v !== "number") return "request has no protocol version 'v'";
  if (typeof x.id !== "number" || !Number.isSafeInteger(x.id)) return "request has no integer 'id'";
  if (typeof x.method !== "string" || !/^[a-z][a-z0-9_.]{0,63}$/.test(x.method)) {
    return "request has no valid 'method'";
  }
  const params = x.params ?? {};
  if (!isRecord(params)) return "'params' must be an object";
  return { v: x.v, id: x.id, method: x.method, params };
}

export function parseResponse(x: unknown): IpcResponse | string {
  if (!isRecord(x)) return "response is not a JSON object";
  if (typeof x.id !== "number") return "response has no 'id'";
  if (x.ok === true) return { v: Number(x.v), id: x.id, ok: true, result: x.result };
  if (x.ok === false && isRecord(x.error) && typeof x.error.message === "string") {
    const e = x.error;
    return {
      v: Number(x.v),
      id: x.id,
      ok: false,
      error: {
        code: String(e.code ?? "error"),
        message: e.message as string,
        hint: typeof e.hint === "string" ? e.hint : undefined,
        exit: typeof e.exit === "number" ? e.exit : 1,
      },
    };
  }
  return "response is neither ok nor a well-formed error";
}
