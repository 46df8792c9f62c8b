/* Two networks trained at once, each in its own thread (forward, backward, SGD): the library
 * keeps no unsynchronised state between networks, and each thread's result has the bits of
 * the same training run alone. `make test-tsan` runs this program under ThreadSanitizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "resnet.h"
#include "support/check.h"

#define BATCH 8
#define IMAGE (3 * 16 * 16)
#define STEPS 3

typedef struct {
    uint64_t seed;
    int blocked; /* rn_net_set_blocked */
    int status;
    char error[256];
    float loss;
    double param_sum;
} job;

static int train(job *j, rn_net **net, rn_sgd **sgd)
{
    /* one OpenMP thread per network: the threads here are the test's own */
    int st = rn_set_threads(1);
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = 16, o.in_w = 16; /* 16 channels at 16 x 16: Winograd's path too */
    o.classes = 4;
    o.seed = j->seed;
    if (!st) st = rn_net_create(net, "resnet8", &o);
    if (!st) st = rn_net_set_blocked(*net, j->blocked);
    if (!st) st = rn_sgd_create(sgd, *net, 0.9f, 1e-4f, 0);
    float x[BATCH * IMAGE];
    int labels[BATCH];
    rn_test_fill_uniform(x, BATCH * IMAGE, j->seed + 1, -1.0f, 1.0f);
    for (int i = 0; i < BATCH; i++) labels[i] = (int)((j->seed + (uint64_t)i) % 4);
    for (int s = 0; !st && s < STEPS; s++) {
        rn_net_zero_grad(*net);
        st = rn_net_forward(*net, x, BATCH, 1, NULL);
        if (!st) st = rn_net_backward(*net, labels, &j->loss);
        if (!st) st = rn_sgd_step(*sgd, *net, 0.05f);
    }
    if (!st) {
        const float *p = rn_net_params(*net);
        for (size_t i = 0; i < rn_net_num_params(*net); i++) j->param_sum += p[i];
    }
    return st;
}

static void *run_job(void *arg)
{
    job *j = arg;
    rn_net *net = NULL;
    rn_sgd *sgd = NULL;
    j->status = train(j, &net, &sgd);
    if (j->status) snprintf(j->error, sizeof j->error, "%s", rn_last_error()); /* per thread */
    rn_sgd_free(sgd);
    rn_net_free(net);
    return NULL;
}

/* First of the program's tests: the library's lazily made caches (the CPU's instruction set,
 * the Winograd switch, the blocked kernels' builds) are first asked for by the threads at
 * once: two planar networks and two on channel-blocked activations. */
static void test_two_networks_in_two_threads(void **state)
{
    (void)state;
    job jobs[4] = {{.seed = 11}, {.seed = 11}, {.seed = 11, .blocked = 1}, {.seed = 11, .blocked = 1}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 4; i++)
        if (jobs[i].status) fail_msg("thread %d: %s", i, jobs[i].error);
    /* alone, on this thread: the same bits */
    for (int blocked = 0; blocked <= 1; blocked++) {
        job alone = {.seed = 11, .blocked = blocked};
        run_job(&alone);
        if (alone.status) fail_msg("%s", alone.error);
        for (int i = 2 * blocked; i < 2 * blocked + 2; i++) {
            assert_true(jobs[i].loss == alone.loss);
            assert_true(jobs[i].param_sum == alone.param_sum);
        }
        assert_true(alone.loss > 0.0f);
    }
}

/* Different networks at once: each thread's error message is its own. */
static void test_errors_stay_in_their_thread(void **state)
{
    (void)state;
    job jobs[2] = {{.seed = 3}, {.seed = 4}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    rn_net *net = NULL;
    assert_int_equal(rn_net_create(&net, "resnet21", NULL), RN_ERR_ARG);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_non_null(strstr(rn_last_error(), "resnet21"));
    for (int i = 0; i < 2; i++) assert_int_equal(jobs[i].status, RN_OK);
    assert_true(jobs[0].param_sum != jobs[1].param_sum);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_networks_in_two_threads),
        cmocka_unit_test(test_errors_stay_in_their_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
