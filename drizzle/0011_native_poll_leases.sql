ALTER TABLE `native_batches` ADD `poll_owner` text;--> statement-breakpoint
ALTER TABLE `native_batches` ADD `poll_lease_expires_at` integer;