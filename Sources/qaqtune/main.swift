import QAQ
print(ISALevel.detected, ISALevel.featureNames, ISALevel.cpuModel)
