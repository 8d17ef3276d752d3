CREATE TABLE `batches` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant` text DEFAULT 'default' NOT NULL,
	`name` text NOT NULL,
	`provider` text NOT NULL,
	`model` text NOT NULL,
	`endpoint` text NOT NULL,
	`priority` integer NOT NULL,
	`status` text NOT NULL,
	`max_attempts` integer NOT NULL,
	`request_count` integer NOT NULL,
	`estimated_tokens` integer DEFAULT 0 NOT NULL,
	`prompt_tokens` integer DEFAULT 0 NOT NULL,
	`completion_tokens` integer DEFAULT 0 NOT NULL,
	`metadata` text,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`expires_at` integer NOT NULL,
	`status_reason` text
);
--> statement-breakpoint
CREATE INDEX `batches_tenant_id` ON `batches` (`tenant`,`id`);--> statement-breakpoint
CREATE INDEX `batches_status` ON `batches` (`status`);--> statement-breakpoint
CREATE TABLE `requests` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`batch_id` text NOT NULL,
	`position` integer NOT NULL,
	`custom_id` text NOT NULL,
	`body` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`estimated_tokens` integer,
	`prompt_tokens` integer,
	`completion_tokens` integer,
	`response_status` integer,
	`response` text,
	`provider_request_id` text,
	`error` text,
	`not_before` integer,
	`queued_at` integer,
	`started_at` integer,
	`finished_at` integer,
	`latency_ms` integer,
	FOREIGN KEY (`batch_id`) REFERENCES `batches`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `requests_batch_custom_id` ON `requests` (`batch_id`,`custom_id`);--> statement-breakpoint
CREATE INDEX `requests_batch_status` ON `requests` (`batch_id`,`status`,`id`);--> statement-breakpoint
CREATE INDEX `requests_batch_position` ON `requests` (`batch_id`,`position`);--> statement-breakpoint
CREATE INDEX `requests_status` ON `requests` (`status`) WHERE status in ('pending', 'queued', 'running');