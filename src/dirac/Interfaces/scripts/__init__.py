"""The user commands of the WMS: dirac-wms-job-*, dirac-wms-select-jobs and COMDIRAC's dsub, dstat, ..."""
