-- The last active admin (role 'admin', not disabled) cannot be demoted, disabled or deleted: every
-- path (admin API, console, account deletion, the promote/demote CLI) hits these triggers, inside
-- the same transaction as the write, so two admins demoting each other at once cannot both win.
-- The app maps the 'last_active_admin' abort to 409 conflict (src/db/index.ts).
CREATE TRIGGER `users_keep_last_admin_update` BEFORE UPDATE OF `role`, `disabled` ON `users`
WHEN OLD.`role` = 'admin' AND OLD.`disabled` = 0 AND (NEW.`role` <> 'admin' OR NEW.`disabled` <> 0)
  AND NOT EXISTS (SELECT 1 FROM `users` WHERE `role` = 'admin' AND `disabled` = 0 AND `id` <> OLD.`id`)
BEGIN
  SELECT RAISE(ABORT, 'last_active_admin');
END;
--> statement-breakpoint
CREATE TRIGGER `users_keep_last_admin_delete` BEFORE DELETE ON `users`
WHEN OLD.`role` = 'admin' AND OLD.`disabled` = 0
  AND NOT EXISTS (SELECT 1 FROM `users` WHERE `role` = 'admin' AND `disabled` = 0 AND `id` <> OLD.`id`)
BEGIN
  SELECT RAISE(ABORT, 'last_active_admin');
END;
