CREATE TABLE `native_batches` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`batch_id` text NOT NULL,
	`provider` text NOT NULL,
	`kind` text NOT NULL,
	`first_request_id` integer NOT NULL,
	`last_request_id` integer NOT NULL,
	`request_count` integer NOT NULL,
	`status` text NOT NULL,
	`provider_batch_id` text,
	`provider_status` text,
	`input_file_id` text,
	`output_file_id` text,
	`error_file_id` text,
	`results_url` text,
	`completed_count` integer DEFAULT 0 NOT NULL,
	`failed_count` integer DEFAULT 0 NOT NULL,
	`error` text,
	`cancel_requested` integer DEFAULT false NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`batch_id`) REFERENCES `batches`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `native_batches_batch` ON `native_batches` (`batch_id`);--> statement-breakpoint
CREATE INDEX `native_batches_open` ON `native_batches` (`status`) WHERE status <> 'imported';--> statement-breakpoint
ALTER TABLE `batches` ADD `mode` text DEFAULT 'realtime' NOT NULL;