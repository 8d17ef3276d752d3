ALTER TABLE `batches` ADD `pinned` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `requests` ADD `deployment` text;--> statement-breakpoint
ALTER TABLE `requests` ADD `attempt_deployments` text;