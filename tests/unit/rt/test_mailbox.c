/* Mailbox: order, the "was idle" scheduling rule, the bound, and N producers into one
 * consumer with no message lost, duplicated or reordered per producer (also under TSan). */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <time.h>

#include "src/rt/mailbox.h"
#include "tests/unit/test.h"

static rd_msg *ping(uint32_t producer, uint64_t seq)
{
    rd_msg *m = msg_new(MSG_PING);
    msg_body(m, ping)->producer = producer;
    msg_body(m, ping)->seq = seq;
    return m;
}

TEST(fifo_and_idle_rule)
{
    rd_mailbox mb;
    mailbox_init(&mb, 0);
    CHECK(mailbox_pop(&mb) == NULL);
    CHECK_EQ_INT(mailbox_push(&mb, ping(0, 1)), 1); /* idle: caller schedules */
    CHECK_EQ_INT(mailbox_push(&mb, ping(0, 2)), 0);
    CHECK_EQ_INT(mailbox_push(&mb, ping(0, 3)), 0);
    CHECK_EQ_INT(mailbox_depth(&mb), 3);
    for (uint64_t want = 1; want <= 3; want++) {
        rd_msg *m = mailbox_pop(&mb);
        CHECK(m != NULL);
        if (m != NULL) {
            CHECK_EQ_INT(msg_body(m, ping)->seq, want);
            msg_free(m);
        }
    }
    CHECK(mailbox_pop(&mb) == NULL);
    CHECK_EQ_INT(mailbox_done(&mb, 2), 1); /* one still unfinished: stay scheduled */
    CHECK_EQ_INT(mailbox_done(&mb, 1), 0); /* idle again */
    CHECK_EQ_INT(mailbox_push(&mb, ping(0, 4)), 1);
    msg_free(mailbox_pop(&mb));
    CHECK_EQ_INT(mailbox_done(&mb, 1), 0);
}

TEST(bound_refuses_and_system_bypasses)
{
    rd_mailbox mb;
    mailbox_init(&mb, 2);
    CHECK_EQ_INT(mailbox_push(&mb, ping(0, 1)), 1);
    CHECK_EQ_INT(mailbox_push(&mb, ping(0, 2)), 0);
    rd_msg *third = ping(0, 3);
    CHECK_EQ_INT(mailbox_push(&mb, third), -EAGAIN);
    third->flags |= RD_MSG_SYSTEM;
    CHECK_EQ_INT(mailbox_push(&mb, third), 0);
    CHECK_EQ_INT(mailbox_depth(&mb), 3);
    rd_msg *m;
    int n = 0;
    while ((m = mailbox_pop(&mb)) != NULL) {
        msg_free(m);
        n++;
    }
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(mailbox_done(&mb, n), 0);
}

#define PRODUCERS    4
#define PER_PRODUCER 100000

static rd_mailbox shared;
static sem_t scheduled; /* posted by the producer whose push finds the consumer idle */
static atomic_int schedules;

static void *producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        rd_msg *m = ping(id, i);
        int r;
        while ((r = mailbox_push(&shared, m)) == -EAGAIN)
            sched_yield(); /* back-pressure: try again */
        if (r == 1) {
            atomic_fetch_add(&schedules, 1);
            sem_post(&scheduled);
        }
    }
    return NULL;
}

TEST(producers_to_one_consumer_exactly_once_in_order)
{
    mailbox_init(&shared, 1024);
    sem_init(&scheduled, 0, 0);
    pthread_t th[PRODUCERS];
    for (uintptr_t p = 0; p < PRODUCERS; p++)
        pthread_create(&th[p], NULL, producer, (void *)p);

    uint64_t next[PRODUCERS] = {0};
    long received = 0, out_of_order = 0, lost_wakeups = 0;
    while (received < (long)PRODUCERS * PER_PRODUCER) {
        /* Sleep until scheduled, exactly as a loop actor would. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 10;
        if (sem_timedwait(&scheduled, &ts) != 0) {
            lost_wakeups++;
            break;
        }
        int32_t left;
        do {
            int32_t n = 0;
            rd_msg *m;
            while (n < 64 && (m = mailbox_pop(&shared)) != NULL) {
                struct rd_msg_ping *b = msg_body(m, ping);
                if (b->seq != next[b->producer])
                    out_of_order++;
                next[b->producer] = b->seq + 1;
                msg_free(m);
                n++;
            }
            received += n;
            left = mailbox_done(&shared, n);
        } while (left > 0);
    }
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(th[p], NULL);
    CHECK_EQ_INT(lost_wakeups, 0);
    CHECK_EQ_INT(out_of_order, 0);
    CHECK_EQ_INT(received, (long)PRODUCERS * PER_PRODUCER);
    for (int p = 0; p < PRODUCERS; p++)
        CHECK_EQ_INT(next[p], PER_PRODUCER);
    CHECK(mailbox_pop(&shared) == NULL);
    /* Every schedule was consumed by one wait: none left over, so none was duplicated. */
    int extra = 0;
    sem_getvalue(&scheduled, &extra);
    CHECK_EQ_INT(extra, 0);
    CHECK(atomic_load(&schedules) >= 1);
    sem_destroy(&scheduled);
}

int main(void)
{
    RUN(fifo_and_idle_rule);
    RUN(bound_refuses_and_system_bypasses);
    RUN(producers_to_one_consumer_exactly_once_in_order);
    return test_summary();
}
