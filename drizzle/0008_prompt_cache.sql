CREATE TABLE `batch_prefixes` (
	`batch_id` text NOT NULL,
	`hash` text NOT NULL,
	`tokens` integer NOT NULL,
	`messages` integer NOT NULL,
	`requests` integer NOT NULL,
	PRIMARY KEY(`batch_id`, `hash`),
	FOREIGN KEY (`batch_id`) REFERENCES `batches`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
ALTER TABLE `batches` ADD `cached_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `cache_write_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `cache_prefix` text DEFAULT 'off' NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `prompt_cache_warmup` integer DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE `requests` ADD `cached_tokens` integer;--> statement-breakpoint
ALTER TABLE `requests` ADD `cache_write_tokens` integer;--> statement-breakpoint
ALTER TABLE `requests` ADD `prefix_hash` text;--> statement-breakpoint
ALTER TABLE `requests` ADD `prefix_tokens` integer;--> statement-breakpoint
ALTER TABLE `requests` ADD `prefix_messages` integer;