CREATE TABLE `lane_limits` (
	`provider` text NOT NULL,
	`model` text NOT NULL,
	`requests_per_minute` integer,
	`tokens_per_minute` integer,
	`max_concurrent` integer,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`provider`, `model`)
);
