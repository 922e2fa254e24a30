/** Admin test harness: make an admin the way `npm run admin -- promote` does (one UPDATE). */
import { env } from "cloudflare:workers";
import { api, signup, type TestUser } from "../../helpers/api";

/** Signs up a user, verifies its email and promotes it to admin (as the CLI requires); its token is an admin's. */
export async function signupAdmin(opts: { email?: string; password?: string } = {}): Promise<TestUser> {
  const user = await signup(opts);
  await env.DB.prepare("UPDATE users SET role = 'admin', email_verified = 1 WHERE id = ?").bind(user.id).run();
  return user;
}

/** Disables a user through the admin API (as the service key); returns the answer. */
export async function disable(userId: string, disabled = true) {
  return api(`/v1/admin/users/${userId}`, { method: "PATCH", token: env.SERVICE_KEY, body: { disabled } });
}
