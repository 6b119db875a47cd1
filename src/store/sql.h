/* SQL both stores write the same way (SQLite and PostgreSQL agree on this much), so an asset
 * reads back alike from either: one text, not two that could drift. */
#ifndef REELD_STORE_SQL_H
#define REELD_STORE_SQL_H

/* An asset as read back: its state follows its job once promoted (ASSET_STATE), and the job's
 * progress, attempts and error come with it, and for a clip its source's public id and master
 * (a deleted source still names itself). ASSET_COLS is the same row without the job (for
 * RETURNING, where the source is a subquery: no join there). */
#define ASSET_SOURCE(col)                                                                          \
    "coalesce((SELECT s." col " FROM assets s WHERE s.id = assets.source_id), '')"
#define ASSET_COLS                                                                                 \
    "id, public_id, org, filename, content_type, size_bytes, state, staging_key, master_key,"      \
    " upload_id, part_size, nparts, job_id, created_ms, updated_ms, '', 0, 0, '', deleted_ms,"     \
    " purge_after_ms, master_until_ms, coalesce(source_id, 0), source_start_ms,"                   \
    " source_end_ms, " ASSET_SOURCE("public_id") ", " ASSET_SOURCE("master_key")
#define ASSET_STATE                                                                                \
    "(CASE WHEN a.deleted_ms > 0 THEN 'deleted' WHEN j.id IS NULL THEN a.state WHEN j.state = "    \
    "'succeeded' THEN 'ready'"                                                                     \
    " WHEN j.state IN ('failed', 'cancelled', 'dead') THEN 'failed' ELSE 'processing' END)"

#endif
