/* Helpers shared by the format readers in src/train/dataset_*.c; not part of any API. */
#ifndef RN_TRAIN_DATASET_INTERNAL_H
#define RN_TRAIN_DATASET_INTERNAL_H

#include <stddef.h>

#include "train/dataset.h"

#define RN_DATA_PATH_MAX 4096

/* dir + "/" + name into buf; RN_ERR_ARG naming the pieces when it does not fit. */
int rn_data_path(char *buf, const char *dir, const char *name);
/* 1 when path exists (anything), 0 when not. */
int rn_data_exists(const char *path);
int rn_data_is_dir(const char *path);

/* Reads one label name per non-empty line (trailing blanks and \r removed). A missing file
 * leaves d without names and succeeds; any other count than d->classes is an error naming
 * the file. */
int rn_data_read_names(rn_dataset *d, const char *path);
int rn_data_set_source(rn_dataset *d, const char *source);
void rn_data_free_names(char **names, int count);

/* The class sub-folders of dir (hidden ones skipped), in strcmp order; an error naming dir when
 * there are none. Free with rn_data_free_names. */
int rn_data_folder_classes(const char *dir, char ***names, int *count);

#endif
