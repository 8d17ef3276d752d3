CREATE TABLE "lane_limits" (
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"requests_per_minute" bigint,
	"tokens_per_minute" bigint,
	"max_concurrent" bigint,
	"updated_at" bigint NOT NULL,
	CONSTRAINT "lane_limits_provider_model_pk" PRIMARY KEY("provider","model")
);
