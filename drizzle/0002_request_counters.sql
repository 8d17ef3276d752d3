ALTER TABLE `batches` ADD `pending_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `queued_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `running_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `succeeded_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `failed_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `cancelled_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `batches` ADD `expired_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Backfill: batches stored before the counters existed get them from their request rows.
UPDATE `batches` SET
  `pending_count` = (SELECT count(*) FROM `requests` WHERE `batch_id` = `batches`.`id` AND `status` = 'pending'),
  `queued_count` = (SELECT count(*) FROM `requests` WHERE `batch_id` = `batches`.`id` AND `status` = 'queued'),
  `running_count` = (SELECT count(*) FROM `requests` WHERE `batch_id` = `batches`.`id` AND `status` = 'running'),
  `succeeded_count` = (SELECT count(*) FROM `requests` WHERE `batch_id` = `batches`.`id` AND `status` = 'succeeded'),
  `failed_count` = (SELECT count(*) FROM `requests` WHERE `batch_id` = `batches`.`id` AND `status` = 'failed'),
  `cancelled_count` = (SELECT count(*) FROM `requests` WHERE `batch_id` = `batches`.`id` AND `status` = 'cancelled'),
  `expired_count` = (SELECT count(*) FROM `requests` WHERE `batch_id` = `batches`.`id` AND `status` = 'expired');
