/**
 * Signing in and out, and the gate every other page passes: a signed-in admin and, on POST, the
 * form's synchronizer token (the Origin check runs before, in app.tsx).
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import type { FC } from "hono/jsx";
import { limits } from "../../../config";
import { verifyPassword } from "../../../lib/crypto";
import { checkRate, clientIp } from "../../../middleware/rate-limit";
import { hasFactor, spendCode, userByEmail } from "../../auth";
import type { ConsoleEnv } from "./context";
import { form } from "./page";
import { currentAdmin, endSession, loginCsrf, loginCsrfValid, sessionCsrf, startSession } from "./session";
import { ErrorBox, Layout, P } from "./ui";

const LoginPage: FC<{ csrf: string; email?: string; error?: string | undefined }> = (p) => (
  <section class="card login">
    <h1>Sign in</h1>
    <p class="muted">For administrators of this backend.</p>
    {p.error ? <ErrorBox message={p.error} /> : null}
    <form method="post" action={`${P}/login`} class="stack">
      <input type="hidden" name="_csrf" value={p.csrf} />
      <label>
        Email
        <input type="email" name="email" autocomplete="username" required value={p.email ?? ""} autofocus />
      </label>
      <label>
        Password
        <input type="password" name="password" autocomplete="current-password" required />
      </label>
      <label>
        Authenticator or recovery code <span class="muted">(when your account has a second factor)</span>
        <input type="text" name="code" autocomplete="one-time-code" inputmode="text" maxlength={32} />
      </label>
      <button type="submit" class="btn primary">
        Sign in
      </button>
    </form>
  </section>
);

/** Mounted at `/admin/login`. */
export const login = new Hono<ConsoleEnv>();

login.get("/", async (c) => {
  if (await currentAdmin(c)) return c.redirect(P, 303);
  return c.html(
    <Layout title="Sign in" appName={c.get("config").appName}>
      <LoginPage csrf={await loginCsrf(c)} />
    </Layout>,
  );
});

const LOGIN_REFUSED = "Wrong email, password or code, or this account may not use the console.";
const MFA_NEEDED =
  "This console needs a second factor: set up an authenticator app on your account (POST /v1/auth/mfa/totp) first.";

login.post("/", async (c) => {
  const f = await form(c);
  if (!(await loginCsrfValid(c, f._csrf ?? "")))
    throw new HTTPException(403, {
      message: "The sign-in form expired or did not come from this console; reload it and try again.",
    });
  await checkRate(c.env, "AUTH_LIMITER", `admin-login:${clientIp(c.req)}`);
  const email = (f.email ?? "").trim().toLowerCase().slice(0, limits.emailMax);
  const password = (f.password ?? "").slice(0, limits.passwordMax);
  const user = email ? await userByEmail(c.get("db"), email) : undefined;
  // One PBKDF2 whatever the account: no timing difference between "no such admin" and a wrong password.
  const { ok } = await verifyPassword(password, user?.passwordHash ?? null);
  // An admin's email must be verified: the console is where the whole user base can be reached.
  const refuse = async (error: string) =>
    c.html(
      <Layout title="Sign in" appName={c.get("config").appName}>
        <LoginPage csrf={await loginCsrf(c)} email={email} error={error} />
      </Layout>,
      401,
    );
  if (!user || !ok || user.role !== "admin" || user.disabled || !user.emailVerified) return refuse(LOGIN_REFUSED);
  // An admin with a second factor gives its code too (the session is then aal2).
  const factor = await hasFactor(c.get("db"), user.id);
  if (factor) {
    const code = (f.code ?? "").trim().slice(0, 32);
    await checkRate(c.env, "AUTH_LIMITER", `admin-login-code:${user.id}`);
    if (!code || !(await spendCode(c.get("db"), c.get("config"), user.id, code))) return refuse(LOGIN_REFUSED);
  } else if (c.get("config").consoleRequireMfa) {
    return refuse(MFA_NEEDED);
  }
  await startSession(c, user.id, factor ? "aal2" : "aal1");
  return c.redirect(P, 303);
});

/** Every page after this needs a signed-in admin and, on POST, the form's token. */
export const requireConsoleAdmin = createMiddleware<ConsoleEnv>(async (c, next) => {
  const admin = await currentAdmin(c);
  if (!admin) {
    if (c.req.method === "GET" || c.req.method === "HEAD") return c.redirect(`${P}/login`, 303);
    throw new HTTPException(403, { message: "You are not signed in (or your session ended); sign in again." });
  }
  c.set("admin", admin);
  c.set("csrf", await sessionCsrf(c, admin));
  if (c.req.method === "POST") {
    const sent = (await form(c))._csrf ?? "";
    if (sent !== c.get("csrf"))
      throw new HTTPException(403, {
        message: "This form's security token is missing or wrong; reload the page and try again.",
      });
  }
  await next();
});

/** Mounted at `/admin/logout`, behind the gate. */
export const logout = new Hono<ConsoleEnv>();

logout.post("/", async (c) => {
  await endSession(c, c.get("db"), c.get("admin"));
  return c.redirect(`${P}/login`, 303);
});
