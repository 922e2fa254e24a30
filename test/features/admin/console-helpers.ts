/** The console as a browser drives it: cookies, same-origin form posts, signing in through the form. */
import { exports } from "cloudflare:workers";
import { freshIp } from "../../helpers/api";

const ORIGIN = "https://outpost.test";

export interface Browser {
  cookies: Map<string, string>;
}

/** One request to the console as a browser would send it (cookies, same-origin form posts). */
export async function visit(
  b: Browser,
  path: string,
  form?: Record<string, string>,
  headers: Record<string, string> = {},
) {
  const h = new Headers({ "cf-connecting-ip": freshIp(), ...headers });
  if (b.cookies.size) h.set("cookie", [...b.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
  let body: string | undefined;
  if (form) {
    body = new URLSearchParams(form).toString();
    h.set("content-type", "application/x-www-form-urlencoded");
    if (!("origin" in headers)) h.set("origin", ORIGIN);
  }
  const res = await exports.default.fetch(
    new Request(`${ORIGIN}${path}`, { method: form ? "POST" : "GET", headers: h, body, redirect: "manual" }),
  );
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const [k, ...rest] = pair!.split("=");
    const value = rest.join("=");
    if (/max-age=0/i.test(c) || value === "") b.cookies.delete(k!);
    else b.cookies.set(k!, value);
  }
  return { status: res.status, headers: res.headers, html: await res.text(), setCookies: res.headers.getSetCookie() };
}

export const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";

/** Signs in through the form; returns the browser (with its session cookie) and the page's token. */
export async function signIn(user: { email: string; password: string }) {
  const b: Browser = { cookies: new Map() };
  const login = await visit(b, "/admin/login");
  const res = await visit(b, "/admin/login", { _csrf: csrfOf(login.html), email: user.email, password: user.password });
  const home = await visit(b, "/admin");
  return { b, res, csrf: csrfOf(home.html), home };
}
