/**
 * Apple and Google ID-token issuers: each has an RSA key pair made at start-up and serves its
 * public JWKS at `/oidc/<provider>/jwks`, like appleid.apple.com and googleapis.com do. Tests get
 * tokens signed by the "real" provider key from the test-only `POST /oidc/<provider>/sign`.
 */
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import type { Standin } from "./server";

const ISSUER = { apple: "https://appleid.apple.com", google: "https://accounts.google.com" } as const;
type Provider = keyof typeof ISSUER;

export function oidcStandin(): Standin {
  const keys = new Map<Provider, Promise<{ privateKey: CryptoKey; jwk: JWK }>>();
  const keyFor = (p: Provider) => {
    let k = keys.get(p);
    if (!k) {
      k = (async () => {
        const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
        const jwk = { ...(await exportJWK(publicKey)), kid: `${p}-key-1`, alg: "RS256", use: "sig" };
        return { privateKey: privateKey as CryptoKey, jwk };
      })();
      keys.set(p, k);
    }
    return k;
  };
  return {
    prefix: "/oidc",
    async handle(req) {
      const m = /^\/oidc\/(apple|google)\/(jwks|sign)$/.exec(req.path);
      if (!m) return null;
      const provider = m[1] as Provider;
      const { privateKey, jwk } = await keyFor(provider);
      if (m[2] === "jwks" && req.method === "GET")
        return { status: 200, body: { keys: [jwk] }, headers: { "cache-control": "max-age=3600" } };
      if (m[2] === "sign" && req.method === "POST") {
        const claims = JSON.parse(req.body) as Record<string, unknown> & { expiresIn?: string | number };
        const { expiresIn = "10m", ...rest } = claims;
        const token = await new SignJWT(rest)
          .setProtectedHeader({ alg: "RS256", kid: jwk.kid! })
          .setIssuer(typeof rest.iss === "string" ? rest.iss : ISSUER[provider])
          .setIssuedAt()
          .setExpirationTime(typeof expiresIn === "number" ? Math.floor(Date.now() / 1000) + expiresIn : expiresIn)
          .sign(privateKey);
        return { status: 200, body: { token } };
      }
      return null;
    },
  };
}
