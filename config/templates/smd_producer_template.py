{#- SubmitSMD's producer configuration (jinja2; rendered by tasks/smalldata.py before the producer
    starts). It plays the part of smalldata_tools' prod_config_<hutch>.py, which upstream LUTE's
    smd_producer_template.py fills in: module-level lists and get*(run) functions returning
    {detector: parameters}. Values arrive validated (tasks/_smd_producer_models.py) and are written
    with the `py` filter, which emits Python literals only, so the file never holds user code. -#}
"""Producer configuration of {{ experiment }} run {{ run }}, rendered by lute-kernel's SubmitSMD.

Made from config/templates/smd_producer_template.py: change the SubmitSMD section of the config
(producer_parameters, or the same keys at its top level), not this file.
"""

# Output of this configuration: {{ out_file }}

# Area detectors whose per-event arrays are reduced (ROIs, azimuthal integration, run sums).
detnames = {{ detnames | default([]) | py }}

# PVs stored every event under epics/<alias>: names, aliases or [pv, alias] pairs.
epicsPV = {{ epicsPV | default([]) | py }}


def getROIs(run):
    """Return {detector: [ROI settings]}: bounds on the last axes of the calibrated array."""
    if isinstance(run, str):
        run = int(run)
    ret_dict = {}
{% for detector, params in (getROIs | default({})).items() %}
    ret_dict[{{ detector | py }}] = [
{% for roi in params.ROIs or [] %}
        {"ROI": {{ roi | py }}, "writeArea": {{ params.writeArea | py }}, "thresADU": {{ params.thresADU | py }}},
{% endfor %}
    ]
{% endfor %}
    return ret_dict


def getAzIntPyFAIParams(run):
    """Return {detector: pyFAI settings}: integrator keywords (or a poni file), bins and units."""
    if isinstance(run, str):
        run = int(run)
    ret_dict = {}
{% for detector, params in (getAzIntPyFAIParams | default({})).items() %}
    az_dict = {}
{% if params.poni_file %}
    az_dict["poni_file"] = {{ params.poni_file | py }}
{% else %}
    az_dict["ai_kwargs"] = {{ (params.ai_kwargs or {}) | py }}
{% endif %}
    az_dict["pix_size"] = {{ params.pix_size | py }}
    az_dict["npts"] = {{ params.npts | py }}
    az_dict["npts_az"] = {{ params.npts_az | py }}
    az_dict["int_units"] = {{ params.int_units | py }}
    az_dict["return2d"] = {{ params.return2d | py }}
    ret_dict[{{ detector | py }}] = az_dict
{% endfor %}
    return ret_dict
