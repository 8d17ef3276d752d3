ALTER TABLE "batches" ADD COLUMN "requeue_count" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "batches" ADD COLUMN "lease_owner" text;--> statement-breakpoint
ALTER TABLE "batches" ADD COLUMN "lease_expires_at" bigint;--> statement-breakpoint
ALTER TABLE "requests" ADD COLUMN "lease_owner" text;--> statement-breakpoint
ALTER TABLE "requests" ADD COLUMN "lease_expires_at" bigint;