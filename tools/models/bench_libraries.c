/* Times XGBoost and LightGBM through their C APIs: the entry points a caller would pick for speed.
 *
 *   bench_libraries xgboost|lightgbm MODEL ROWS.f64 COLUMNS BATCH_ROWS ALL_THREADS
 *
 * ROWS.f64 is a row-major matrix of little-endian doubles (NaN = missing), COLUMNS wide, in the
 * model's feature order. Prints one JSON object:
 *
 *   single_row_us                  median over rounds of the mean wall time of one single-row
 *                                  call: XGBoosterPredictFromDense on a 1-row array (XGBoost has
 *                                  no faster single-row entry point), or
 *                                  LGBM_BoosterPredictForMatSingleRowFast after its one-off
 *                                  ...FastInit. The array-interface strings XGBoost parses are
 *                                  written before the clock starts.
 *   batch_rows_per_s_1_thread      BATCH_ROWS rows in one call on one thread (best of 5):
 *                                  XGBoosterPredictFromDense / LGBM_BoosterPredictForMat.
 *   batch_rows_per_s_all_threads   the same on ALL_THREADS threads.
 *   batch_cpu_us_per_row_1_thread  process CPU time per row of the one-thread batch.
 *
 * Built by tools/models/bench_vs_libraries.py against the libraries in the pinned Python wheels
 * (tools/models/requirements.txt); the prototypes below are those of xgboost/c_api.h and
 * LightGBM/c_api.h.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint64_t bst_ulong;
typedef void *Handle;

int XGBoosterCreate(const Handle dmats[], bst_ulong len, Handle *out);
int XGBoosterLoadModel(Handle handle, const char *fname);
int XGBoosterSetParam(Handle handle, const char *name, const char *value);
int XGBoosterPredictFromDense(Handle handle, char const *values, char const *config, Handle m,
                              bst_ulong const **out_shape, bst_ulong *out_dim,
                              const float **out_result);
const char *XGBGetLastError(void);

int LGBM_BoosterCreateFromModelfile(const char *filename, int *out_num_iterations, Handle *out);
int LGBM_BoosterGetNumClasses(Handle handle, int *out_len);
int LGBM_BoosterPredictForMat(Handle handle, const void *data, int data_type, int32_t nrow,
                              int32_t ncol, int is_row_major, int predict_type,
                              int start_iteration, int num_iteration, const char *parameter,
                              int64_t *out_len, double *out_result);
int LGBM_BoosterPredictForMatSingleRowFastInit(Handle handle, const int predict_type,
                                               const int start_iteration,
                                               const int num_iteration, const int data_type,
                                               const int32_t ncol, const char *parameter,
                                               Handle *out_fastConfig);
int LGBM_BoosterPredictForMatSingleRowFast(Handle fastConfig_handle, const void *data,
                                           int64_t *out_len, double *out_result);
const char *LGBM_GetLastError(void);

#define SINGLE_ROUNDS 15
#define BATCH_ROUNDS 5
#define C_API_DTYPE_FLOAT64 1

static double now(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void check(int status, const char *what, int xgboost) {
  if (status != 0) {
    fprintf(stderr, "%s failed: %s\n", what, xgboost ? XGBGetLastError() : LGBM_GetLastError());
    exit(1);
  }
}

static double *rows;
static size_t row_count, columns;
static double *batch;
static size_t batch_rows;
static volatile double sink;

/* XGBoost's inplace-prediction config: plain prediction, all trees, NaN missing. */
static const char *XGB_CONFIG =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";

static char *array_interface(const double *data, size_t n) {
  char *text = malloc(256);
  snprintf(text, 256,
           "{\"data\": [%llu, true], \"shape\": [%zu, %zu], \"typestr\": \"<f8\", \"version\": 3}",
           (unsigned long long)(uintptr_t)data, n, columns);
  return text;
}

static double xgb_batch(Handle booster, const char *threads, double *cpu_us_per_row) {
  check(XGBoosterSetParam(booster, "nthread", threads), "XGBoosterSetParam", 1);
  char *interface = array_interface(batch, batch_rows);
  double best = INFINITY, best_cpu = INFINITY;
  for (int round = 0; round < BATCH_ROUNDS; round++) {
    const bst_ulong *shape;
    bst_ulong dim;
    const float *out;
    double start = now(CLOCK_MONOTONIC), cpu = now(CLOCK_PROCESS_CPUTIME_ID);
    check(XGBoosterPredictFromDense(booster, interface, XGB_CONFIG, NULL, &shape, &dim, &out),
          "XGBoosterPredictFromDense", 1);
    double elapsed = now(CLOCK_MONOTONIC) - start;
    double cpu_elapsed = now(CLOCK_PROCESS_CPUTIME_ID) - cpu;
    sink += out[0];
    if (elapsed < best) best = elapsed;
    if (cpu_elapsed < best_cpu) best_cpu = cpu_elapsed;
  }
  free(interface);
  if (cpu_us_per_row) *cpu_us_per_row = best_cpu * 1e6 / (double)batch_rows;
  return (double)batch_rows / best;
}

static void run_xgboost(const char *model, const char *all_threads) {
  Handle booster;
  check(XGBoosterCreate(NULL, 0, &booster), "XGBoosterCreate", 1);
  check(XGBoosterLoadModel(booster, model), "XGBoosterLoadModel", 1);
  check(XGBoosterSetParam(booster, "nthread", "1"), "XGBoosterSetParam", 1);
  char **interfaces = malloc(row_count * sizeof(char *));
  for (size_t i = 0; i < row_count; i++) interfaces[i] = array_interface(rows + i * columns, 1);
  double rounds[SINGLE_ROUNDS];
  for (int round = 0; round < SINGLE_ROUNDS; round++) {
    double start = now(CLOCK_MONOTONIC);
    for (size_t i = 0; i < row_count; i++) {
      const bst_ulong *shape;
      bst_ulong dim;
      const float *out;
      check(XGBoosterPredictFromDense(booster, interfaces[i], XGB_CONFIG, NULL, &shape, &dim,
                                      &out),
            "XGBoosterPredictFromDense", 1);
      sink += out[0];
    }
    rounds[round] = (now(CLOCK_MONOTONIC) - start) * 1e6 / (double)row_count;
  }
  qsort(rounds, SINGLE_ROUNDS, sizeof(double), compare);
  double cpu_us;
  double one = xgb_batch(booster, "1", &cpu_us);
  double all = xgb_batch(booster, all_threads, NULL);
  printf("{\"single_row_us\": %g, \"batch_rows_per_s_1_thread\": %g, "
         "\"batch_rows_per_s_all_threads\": %g, \"batch_cpu_us_per_row_1_thread\": %g}\n",
         rounds[SINGLE_ROUNDS / 2], one, all, cpu_us);
}

static double lgb_batch(Handle booster, const char *parameter, int classes,
                        double *cpu_us_per_row) {
  double *out = malloc(batch_rows * (size_t)classes * sizeof(double));
  double best = INFINITY, best_cpu = INFINITY;
  for (int round = 0; round < BATCH_ROUNDS; round++) {
    int64_t len;
    double start = now(CLOCK_MONOTONIC), cpu = now(CLOCK_PROCESS_CPUTIME_ID);
    check(LGBM_BoosterPredictForMat(booster, batch, C_API_DTYPE_FLOAT64, (int32_t)batch_rows,
                                    (int32_t)columns, 1, 0, 0, -1, parameter, &len, out),
          "LGBM_BoosterPredictForMat", 0);
    double elapsed = now(CLOCK_MONOTONIC) - start;
    double cpu_elapsed = now(CLOCK_PROCESS_CPUTIME_ID) - cpu;
    sink += out[0];
    if (elapsed < best) best = elapsed;
    if (cpu_elapsed < best_cpu) best_cpu = cpu_elapsed;
  }
  free(out);
  if (cpu_us_per_row) *cpu_us_per_row = best_cpu * 1e6 / (double)batch_rows;
  return (double)batch_rows / best;
}

static void run_lightgbm(const char *model, const char *all_threads) {
  Handle booster, fast;
  int iterations, classes;
  check(LGBM_BoosterCreateFromModelfile(model, &iterations, &booster), "LGBM_BoosterCreate", 0);
  check(LGBM_BoosterGetNumClasses(booster, &classes), "LGBM_BoosterGetNumClasses", 0);
  check(LGBM_BoosterPredictForMatSingleRowFastInit(booster, 0, 0, -1, C_API_DTYPE_FLOAT64,
                                                   (int32_t)columns, "num_threads=1", &fast),
        "LGBM_BoosterPredictForMatSingleRowFastInit", 0);
  double *out = malloc((size_t)classes * sizeof(double));
  double rounds[SINGLE_ROUNDS];
  for (int round = 0; round < SINGLE_ROUNDS; round++) {
    double start = now(CLOCK_MONOTONIC);
    for (size_t i = 0; i < row_count; i++) {
      int64_t len;
      check(LGBM_BoosterPredictForMatSingleRowFast(fast, rows + i * columns, &len, out),
            "LGBM_BoosterPredictForMatSingleRowFast", 0);
      sink += out[0];
    }
    rounds[round] = (now(CLOCK_MONOTONIC) - start) * 1e6 / (double)row_count;
  }
  qsort(rounds, SINGLE_ROUNDS, sizeof(double), compare);
  char parameter[64];
  snprintf(parameter, sizeof parameter, "num_threads=%s", all_threads);
  double cpu_us;
  double one = lgb_batch(booster, "num_threads=1", classes, &cpu_us);
  double all = lgb_batch(booster, parameter, classes, NULL);
  printf("{\"single_row_us\": %g, \"batch_rows_per_s_1_thread\": %g, "
         "\"batch_rows_per_s_all_threads\": %g, \"batch_cpu_us_per_row_1_thread\": %g}\n",
         rounds[SINGLE_ROUNDS / 2], one, all, cpu_us);
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr,
            "usage: %s xgboost|lightgbm MODEL ROWS.f64 COLUMNS BATCH_ROWS ALL_THREADS\n",
            argv[0]);
    return 2;
  }
  columns = strtoul(argv[4], NULL, 10);
  batch_rows = strtoul(argv[5], NULL, 10);
  FILE *file = fopen(argv[3], "rb");
  if (!file) {
    perror(argv[3]);
    return 1;
  }
  fseek(file, 0, SEEK_END);
  long bytes = ftell(file);
  fseek(file, 0, SEEK_SET);
  row_count = (size_t)bytes / sizeof(double) / columns;
  rows = malloc((size_t)bytes);
  if (fread(rows, 1, (size_t)bytes, file) != (size_t)bytes) {
    perror(argv[3]);
    return 1;
  }
  fclose(file);
  batch = malloc(batch_rows * columns * sizeof(double));
  for (size_t i = 0; i < batch_rows; i++)
    memcpy(batch + i * columns, rows + (i % row_count) * columns, columns * sizeof(double));
  if (strcmp(argv[1], "xgboost") == 0) {
    run_xgboost(argv[2], argv[6]);
  } else {
    run_lightgbm(argv[2], argv[6]);
  }
  return 0;
}
