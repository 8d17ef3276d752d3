ALTER TABLE `batches` ADD `requeue_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `lease_owner` text;--> statement-breakpoint
ALTER TABLE `batches` ADD `lease_expires_at` integer;--> statement-breakpoint
ALTER TABLE `requests` ADD `lease_owner` text;--> statement-breakpoint
ALTER TABLE `requests` ADD `lease_expires_at` integer;