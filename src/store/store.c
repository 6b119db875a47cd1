/* The store's front: picks the backend from the configuration and says what errors mean. */
#include "src/store/store.h"

#include <stddef.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* REELD_DATA_DIR/reeld.db; the directory is created when missing. */
static int sqlite_path(const rd_config *cfg, char *path, size_t cap, char *err, size_t errlen)
{
    if (mkdir(cfg->data_dir, 0750) < 0 && errno != EEXIST) {
        int e = -errno;
        snprintf(err, errlen, "REELD_DATA_DIR: cannot create %s: %s", cfg->data_dir,
                 strerror(errno));
        return e;
    }
    if ((size_t)snprintf(path, cap, "%s/reeld.db", cfg->data_dir) >= cap) {
        snprintf(err, errlen, "REELD_DATA_DIR: path too long");
        return -ENAMETOOLONG;
    }
    return 0;
}

int store_migrate_to(const rd_config *cfg, int version, char *err, size_t errlen)
{
    if (cfg->postgres_url != NULL)
        return store_pg_migrate(cfg->postgres_url, version, err, errlen);
    char path[PATH_MAX];
    int r = sqlite_path(cfg, path, sizeof(path), err, errlen);
    return r < 0 ? r : store_sqlite_migrate(path, version, err, errlen);
}

int store_migrate(const rd_config *cfg, char *err, size_t errlen)
{
    return store_migrate_to(cfg, INT_MAX, err, errlen);
}

int store_webhook_max_attempts = 60;

int store_spawn(const rd_config *cfg, rd_loop *loop, rd_actor **out)
{
    if (cfg->webhook_max_attempts > 0)
        store_webhook_max_attempts = cfg->webhook_max_attempts;
    if (cfg->postgres_url != NULL) {
        return store_pg_spawn(loop, cfg->postgres_url, cfg->pg_pool, cfg->redis_url != NULL, out);
    }
    static char path[PATH_MAX]; /* outlives the actor: the process's one sqlite store */
    char err[256];
    int r = sqlite_path(cfg, path, sizeof(path), err, sizeof(err));
    return r < 0 ? r : store_sqlite_spawn(path, out);
}

void store_free(rd_actor *store)
{
    if (store == NULL)
        return;
    if (store_is_pg(store)) {
        store_pg_free(store);
    } else {
        actor_stop(store);
        actor_join(store);
    }
}

rd_msg *store_request(rd_store_op op)
{
    rd_msg *m = msg_new(MSG_STORE);
    msg_body(m, store)->op = (uint16_t)op;
    return m;
}

rd_msg *store_request_find(void)
{
    rd_msg *m = msg_new_sized(MSG_STORE, offsetof(struct rd_msg_store, assets) + sizeof(rd_asset));
    msg_body(m, store)->op = STORE_ASSET_FIND;
    return m;
}

const char *store_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case -ENOENT:
        return "not found";
    case -EALREADY:
        return "the job has already finished";
    case -EINVAL:
        return "invalid request";
    case -ENOTCONN:
        return "the database is unreachable; retry shortly";
    case -ECONNRESET:
        return "the connection to the database broke; retry shortly";
    case -EAGAIN:
        return "the database is busy; retry shortly";
    case -ETIMEDOUT:
        return "the database did not answer in time; retry shortly";
    default:
        return "the database failed";
    }
}
