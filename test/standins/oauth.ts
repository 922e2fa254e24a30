/**
 * OAuth / OpenID providers for the web sign-in flow, and Apple's server endpoints:
 * - `/oidc/issuer/<name>/…`: an OpenID provider per name (discovery, authorize, token, userinfo, JWKS),
 *   with PKCE and nonce like Google's and Apple's (the `apple` issuer answers with form_post and checks
 *   the ES256 client secret signed with the test key).
 * - `/github/…`: GitHub's authorize and token pages, and its API (`/github/api/user`, `/user/emails`).
 * - `/apple/auth/token` and `/apple/auth/revoke`: Sign in with Apple's code exchange and revocation.
 * Tests play the browser: they follow the start redirect to `authorize` adding `as=<base64url JSON>`,
 * the user the provider signs in (`{ sub, email, email_verified, name }`, GitHub `{ id, login, emails }`,
 * or `{ deny: true }`). Client secrets are `secret-for-<client id>`. `POST /apple/fail-revokes
 * { count }` makes the next revocations answer 500.
 */
import { createHash, randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair, importSPKI, type JWK, jwtVerify, SignJWT } from "jose";
import { APNS_TEST_TEAM_ID, apnsTestPublicKeyPem } from "./keys";
import type { Standin, StandinReply, StandinRequest } from "./server";

interface Grant {
  issuer: string;
  clientId: string;
  redirectUri: string;
  challenge: string | undefined;
  nonce: string | undefined;
  user: Record<string, unknown>;
}

const b64url = (b: Buffer) => b.toString("base64url");
const s256 = (v: string) => b64url(createHash("sha256").update(v).digest());
const bad = (error: string, status = 400): StandinReply => ({ status, body: { error } });
const form = (req: StandinRequest) => Object.fromEntries(new URLSearchParams(req.body));

export function oauthStandin(): Standin {
  const keys = new Map<string, Promise<{ privateKey: CryptoKey; jwk: JWK }>>();
  const keyFor = (name: string) => {
    let k = keys.get(name);
    if (!k) {
      k = (async () => {
        const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
        return {
          privateKey: privateKey as CryptoKey,
          jwk: { ...(await exportJWK(publicKey)), kid: `${name}-1`, alg: "RS256" },
        };
      })();
      keys.set(name, k);
    }
    return k;
  };
  const appleKey = importSPKI(apnsTestPublicKeyPem(), "ES256");
  const grants = new Map<string, Grant>();
  const accessTokens = new Map<string, Grant>();
  let failRevokes = 0;

  /** Apple's check of a client secret: ES256 by the team's key, for this client, to this audience. */
  const appleSecretOk = async (secret: string | undefined, clientId: string, audience: string) => {
    if (!secret) return false;
    try {
      const { payload } = await jwtVerify(secret, await appleKey, {
        issuer: APNS_TEST_TEAM_ID,
        audience,
        subject: clientId,
      });
      return payload.exp !== undefined;
    } catch {
      return false;
    }
  };

  /** The authorize page: the user (from `as`) signs in and the browser goes back with a code. */
  const authorize = (req: StandinRequest, issuer: string, formPost: boolean): StandinReply => {
    const q = req.query;
    if (q.response_type !== "code" || !q.client_id || !q.redirect_uri || !q.state) return bad("invalid_request");
    if (q.code_challenge_method !== "S256" || !q.code_challenge) return bad("pkce_required");
    const user = JSON.parse(Buffer.from(q.as ?? "", "base64url").toString("utf8") || "{}") as Record<string, unknown>;
    const back = new URL(q.redirect_uri);
    const fields: Record<string, string> = { state: q.state };
    if (user.deny) fields.error = "access_denied";
    else {
      const code = b64url(randomBytes(16));
      grants.set(code, {
        issuer,
        clientId: q.client_id,
        redirectUri: q.redirect_uri,
        challenge: q.code_challenge,
        nonce: q.nonce,
        user,
      });
      fields.code = code;
      if (formPost && user.name)
        fields.user = JSON.stringify({ name: { firstName: user.name, lastName: "Appleseed" } });
    }
    if (formPost) return { status: 200, body: { post: back.toString(), fields } };
    for (const [k, v] of Object.entries(fields)) back.searchParams.set(k, v);
    return { status: 302, headers: { location: back.toString() } };
  };

  /** The token endpoint: code, redirect URI, client, secret and PKCE verifier, like a real provider. */
  const redeem = async (req: StandinRequest, issuer: string, apple: boolean): Promise<Grant | StandinReply> => {
    const f = form(req);
    const g = f.code ? grants.get(f.code) : undefined;
    if (f.grant_type !== "authorization_code" || !g || g.issuer !== issuer) return bad("invalid_grant");
    grants.delete(f.code!);
    if (f.redirect_uri !== g.redirectUri || f.client_id !== g.clientId) return bad("invalid_grant");
    if (!f.code_verifier || s256(f.code_verifier) !== g.challenge) return bad("invalid_grant");
    const secretOk = apple
      ? await appleSecretOk(f.client_secret, g.clientId, issuer)
      : f.client_secret === `secret-for-${g.clientId}`;
    if (!secretOk) return bad("invalid_client", 401);
    return g;
  };

  return {
    prefix: "/",
    async handle(req) {
      const host = `http://${req.headers.host}`;
      let m = /^\/oidc\/issuer\/([a-z0-9-]+)\/(.+)$/.exec(req.path);
      if (m) {
        const [, name, what] = m as unknown as [string, string, string];
        const issuer = `${host}/oidc/issuer/${name}`;
        const apple = name === "apple";
        if (what === ".well-known/openid-configuration") {
          return {
            status: 200,
            body: {
              issuer,
              authorization_endpoint: `${issuer}/authorize`,
              token_endpoint: `${issuer}/token`,
              jwks_uri: `${issuer}/jwks`,
              userinfo_endpoint: `${issuer}/userinfo`,
            },
          };
        }
        if (what === "jwks") return { status: 200, body: { keys: [(await keyFor(name)).jwk] } };
        if (what === "authorize") return authorize(req, issuer, apple && req.query.response_mode === "form_post");
        if (what === "token" && req.method === "POST") {
          const g = await redeem(req, issuer, apple);
          if ("status" in g) return g;
          const { privateKey, jwk } = await keyFor(name);
          const { sub, email, email_verified, name: userName, emailOnlyInUserinfo, nonce } = g.user;
          // Apple never puts the name in its ID token (only in the form_post's `user`, once).
          const claims: Record<string, unknown> = {
            sub,
            nonce: nonce ?? g.nonce,
            ...(apple ? {} : { name: userName }),
          };
          if (!emailOnlyInUserinfo) Object.assign(claims, { email, email_verified });
          const idToken = await new SignJWT(claims)
            .setProtectedHeader({ alg: "RS256", kid: jwk.kid! })
            .setIssuer(typeof g.user.iss === "string" ? g.user.iss : issuer)
            .setAudience(typeof g.user.aud === "string" ? g.user.aud : g.clientId)
            .setIssuedAt()
            .setExpirationTime("10m")
            .sign(privateKey);
          const at = b64url(randomBytes(16));
          accessTokens.set(at, g);
          const refresh = apple ? { refresh_token: `rt-web-${b64url(randomBytes(8))}` } : {};
          return {
            status: 200,
            body: { access_token: at, token_type: "Bearer", expires_in: 3600, id_token: idToken, ...refresh },
          };
        }
        if (what === "userinfo") {
          const g = accessTokens.get((req.headers.authorization ?? "").replace(/^Bearer /, ""));
          if (!g) return bad("invalid_token", 401);
          const { sub, email, email_verified, name: userName } = g.user;
          return { status: 200, body: { sub, email, email_verified, name: userName } };
        }
        return null;
      }
      m = /^\/github\/(.+)$/.exec(req.path);
      if (m) {
        const issuer = `${host}/github`;
        if (m[1] === "login/oauth/authorize") return authorize(req, issuer, false);
        if (m[1] === "login/oauth/access_token" && req.method === "POST") {
          if (req.headers.accept !== "application/json") return { status: 200, body: "access_token=form-encoded" };
          const g = await redeem(req, issuer, false);
          if ("status" in g) return g;
          const at = b64url(randomBytes(16));
          accessTokens.set(at, g);
          return { status: 200, body: { access_token: at, token_type: "bearer", scope: "read:user,user:email" } };
        }
        const g = accessTokens.get((req.headers.authorization ?? "").replace(/^Bearer /, ""));
        if (m[1] === "api/user" || m[1] === "api/user/emails") {
          if (!g || g.issuer !== issuer) return { status: 401, body: { message: "Bad credentials" } };
          if (m[1] === "api/user")
            return { status: 200, body: { id: g.user.id, login: g.user.login, name: g.user.name ?? null } };
          return { status: 200, body: g.user.emails ?? [] };
        }
        return null;
      }
      m = /^\/apple\/(auth\/token|auth\/revoke|fail-revokes)$/.exec(req.path);
      if (m && req.method === "POST") {
        if (m[1] === "fail-revokes") {
          failRevokes = Number((JSON.parse(req.body) as { count: number }).count);
          return { status: 200, body: {} };
        }
        const f = form(req);
        if (!(await appleSecretOk(f.client_secret, f.client_id ?? "", "https://appleid.apple.com"))) {
          return bad("invalid_client");
        }
        if (m[1] === "auth/revoke") {
          if (failRevokes > 0) {
            failRevokes--;
            return { status: 500, body: "" };
          }
          return f.token && f.token_type_hint === "refresh_token" ? { status: 200, body: "" } : bad("invalid_request");
        }
        // The native code exchange: any code starting with "ok-" is Apple's; the refresh token names it.
        if (f.grant_type !== "authorization_code" || !f.code?.startsWith("ok-")) return bad("invalid_grant");
        return {
          status: 200,
          body: { access_token: "apple-at", token_type: "Bearer", expires_in: 3600, refresh_token: `rt-${f.code}` },
        };
      }
      return null;
    },
  };
}
